"""`python -m hacm.prepare`: whole folders converted, every bad file reported, the run never aborted by one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hacm.data.ntu import load_sample
from hacm.data.storage import SkeletonStore
from hacm.prepare.__main__ import main as prepare_main

GOOD = ["S001C001P001R001A001", "S001C001P001R001A050", "S002C001P003R001A003", "S003C001P015R001A034",
        "S017C003P020R002A054", "S017C003P020R002A055", "S001C001P001R001A011"]


def _corrupt_files(folder: Path, source: Path) -> dict[str, str]:
    """One file of each kind of damage; name -> the words its report line must contain."""
    text = source.read_text()
    lines = text.splitlines()
    damage = {
        "S005C002P004R001A010": ("\n".join(lines[: len(lines) // 2]) + "\n", "truncated"),
        "S005C002P004R001A011": (text.replace("\n25\n", "\n24\n", 1), "24 joints"),
        "S005C002P004R001A012": (text.replace(lines[10].split()[0], "abc", 1), "non-numeric"),
        "S005C002P004R001A013": (text.replace(lines[12].split()[1], "nan", 1), "NaN"),
        "S005C002P004R001A014": ("", "empty"),
    }
    for name, (content, _) in damage.items():
        (folder / f"{name}.skeleton").write_text(content)
    (folder / "S005C002P004R001A015.skeleton").symlink_to(folder / "gone.skeleton")
    expected = {name: reason for name, (_, reason) in damage.items()}
    expected["S005C002P004R001A015"] = "unreadable"
    return expected


@pytest.fixture()
def raw_folder(tmp_path: Path, shared_data: Path) -> tuple[Path, dict[str, str]]:
    raw = tmp_path / "raw" / "nturgb+d_skeletons"
    raw.mkdir(parents=True)
    for name in GOOD:
        shutil.copy(shared_data / "ntu_raw_samples" / f"{name}.skeleton", raw)
    # A sample on the official missing list: skipped without being read.
    (raw / "S001C002P005R002A008.skeleton").write_text("garbage")
    shutil.copy(shared_data / "ntu_statistics" / "official_shahroudy" / "NTU_RGBD_samples_with_missing_skeletons.txt",
                tmp_path / "raw")
    expected = _corrupt_files(raw, shared_data / "ntu_raw_samples" / "S001C001P001R001A002.skeleton")
    return tmp_path / "raw", expected


def test_bad_files_are_reported_and_good_ones_converted(raw_folder, tmp_path, capsys):
    raw, expected = raw_folder
    out = tmp_path / "out"
    status = prepare_main(["ntu60", "--raw", str(raw), "--out", str(out), "--workers", "2",
                           "--max-bad-fraction", "0.5"])
    assert status == 0
    report = json.loads((out / "report.json").read_text())["parts"][0]
    assert report["files_found"] == len(GOOD) + 1 + len(expected)
    assert report["files_skipped_missing_list"] == 1
    assert report["files_converted"] == len(GOOD)
    reasons = {Path(p["path"]).name.removesuffix(".skeleton"): p["reason"] for p in report["problems"]}
    assert set(reasons) == set(expected)
    for name, words in expected.items():
        assert words in reasons[name], (name, reasons[name])
    stderr = capsys.readouterr().err
    assert sum(line.startswith("hacm.prepare: skipped") for line in stderr.splitlines()) == len(expected)
    assert "Traceback" not in stderr
    for benchmark in ("ntu60-xsub", "ntu60-xview"):
        train, test = SkeletonStore(out / benchmark / "train"), SkeletonStore(out / benchmark / "test")
        assert len(train) + len(test) == len(GOOD)
        for store in (train, test):
            for i, name in enumerate(store.names):
                expected_frames = load_sample(raw / "nturgb+d_skeletons" / f"{name}.skeleton")
                np.testing.assert_array_equal(store.sequence(i), expected_frames)
                assert store.labels[i] == int(name[-3:]) - 1
    xsub_train = SkeletonStore(out / "ntu60-xsub" / "train").names.tolist()
    assert sorted(xsub_train) == ["S001C001P001R001A001", "S001C001P001R001A011", "S001C001P001R001A050",
                                  "S003C001P015R001A034"]  # performers 1 and 15 train; 3 and 20 test


def tree_digest(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_too_many_bad_files_fail_the_run_and_leave_no_store(raw_folder, tmp_path, capsys):
    raw, _ = raw_folder
    status = prepare_main(["ntu60", "--raw", str(raw), "--out", str(tmp_path / "o"), "--workers", "1"])
    assert status == 1  # 6 bad of 13 in scope > 2 %
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.staging").exists()
    rejected = tmp_path / "o.rejected-report.json"
    assert json.loads(rejected.read_text())["parts"][0]["files_bad"] == 6
    assert str(rejected) in capsys.readouterr().err


def test_a_failed_prepare_leaves_the_previous_output_untouched(raw_folder, tmp_path, capsys):
    """Reliability probe, defect 3: stores used to be replaced one by one before the bad-fraction check,
    leaving a mix of new and old splits (and the old report) that looked valid."""
    raw, _ = raw_folder
    out = tmp_path / "o"
    assert prepare_main(["ntu60", "--raw", str(raw), "--out", str(out), "--workers", "2",
                         "--max-bad-fraction", "0.5"]) == 0
    before = tree_digest(out)
    (raw / "nturgb+d_skeletons" / "S001C001P001R001A050.skeleton").unlink()  # the data changes ...
    assert prepare_main(["ntu60", "--raw", str(raw), "--out", str(out), "--workers", "2"]) == 1  # ... and fails
    assert tree_digest(out) == before and not (tmp_path / "o.staging").exists()
    assert "was left as it was" in capsys.readouterr().err
    # A run that passes replaces the output as a whole, and drops the stale rejected report.
    assert prepare_main(["ntu60", "--raw", str(raw), "--out", str(out), "--workers", "2",
                         "--max-bad-fraction", "0.5"]) == 0
    assert len(SkeletonStore(out / "ntu60-xsub" / "train")) + len(SkeletonStore(out / "ntu60-xsub" / "test")) \
        == len(GOOD) - 1
    assert not (tmp_path / "o.rejected-report.json").exists()


def test_what_a_killed_prepare_left_is_removed_by_the_next_run_with_a_word(raw_folder, tmp_path, capsys):
    """Reliability probe 2 (N26): kill -9 leaves OUT.staging (nothing can remove it then); the next run removes
    it and says so, and leaves no OUT.lock beside its output."""
    raw, _ = raw_folder
    out = tmp_path / "o"
    (tmp_path / "o.staging" / "ntu60-xsub").mkdir(parents=True)
    assert prepare_main(["ntu60", "--raw", str(raw), "--out", str(out), "--workers", "1",
                         "--max-bad-fraction", "0.5"]) == 0
    assert "removing " + str(tmp_path / "o.staging") + ", left by an interrupted run" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("o")) == ["o"]

def test_ctrl_c_during_a_multi_worker_prepare_exits_promptly(synthetic_raw, tmp_path):
    """Reliability probe, defect 4: Ctrl-C could hang forever in the pool's terminate (2 of 14 tries).
    SIGINT goes to the whole process group, as a terminal sends it; interrupted at several moments."""
    import os
    import signal
    import time

    from tests.conftest import default_sigint

    out = tmp_path / "o"
    interrupted = 0
    for delay in (0.8, 1.2, 1.6, 2.0, 2.4, 2.8):
        process = subprocess.Popen([sys.executable, "-m", "hacm.prepare", "synthetic", "--raw", str(synthetic_raw),
                                    "--out", str(out), "--workers", "2"], start_new_session=True,
                                   preexec_fn=default_sigint,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"prepare did not exit within 30 s of Ctrl-C at {delay} s")
        # -SIGINT: the signal came while the interpreter was shutting down after a complete run (Python
        # restores the default disposition then); the output must be whole.
        assert process.returncode in (0, 130, -signal.SIGINT), stderr[-2000:]
        assert "Traceback" not in stderr
        assert not (tmp_path / "o.staging").exists()
        if process.returncode != 130:
            assert (out / "report.json").is_file() and "interrupted" not in stderr
        if process.returncode == 130:
            interrupted += 1
            assert "interrupted" in stderr and ("left as it was" in stderr or "nothing was written" in stderr)
    assert interrupted >= 2  # most tries land in the middle of the conversion


def test_usage_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "hacm.prepare", "ntu60", "--raw", str(tmp_path / "none"),
                             "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert result.returncode == 2 and "is not a folder" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "empty").mkdir()
    result = subprocess.run([sys.executable, "-m", "hacm.prepare", "ntu60", "--raw", str(tmp_path / "empty"),
                             "--out", str(tmp_path / "o"), "--no-missing-list"], capture_output=True, text=True)
    assert result.returncode == 1 and "no .skeleton file" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "empty" / "S001C001P001R001A001.skeleton").write_text("1\n0\n")
    result = subprocess.run([sys.executable, "-m", "hacm.prepare", "ntu60", "--raw", str(tmp_path / "empty"),
                             "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert result.returncode == 1 and "hacm.fetch ntu60" in result.stderr and "Traceback" not in result.stderr
    # --out that is a file: refused, the file kept (probe case 15: it was replaced by the stores).
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    result = subprocess.run([sys.executable, "-m", "hacm.prepare", "ntu60", "--raw", str(tmp_path / "empty"),
                             "--out", str(notes), "--no-missing-list"], capture_output=True, text=True)
    assert result.returncode == 2 and "is a file" in result.stderr and notes.read_text() == "mine"


def test_two_prepares_cannot_write_one_output(tmp_path):
    from hacm.locks import OutputLock

    (tmp_path / "empty").mkdir()
    out = tmp_path / "o"
    with OutputLock(out.with_name("o.lock"), output=out, hint="wait for it to finish"):
        result = subprocess.run([sys.executable, "-m", "hacm.prepare", "ntu60", "--raw", str(tmp_path / "empty"),
                                 "--out", str(out), "--no-missing-list"], capture_output=True, text=True)
    assert result.returncode == 1 and "in use by another run" in result.stderr and "Traceback" not in result.stderr


def test_synthetic_dataset_converts_cleanly_into_every_benchmark(synthetic_stores):
    from hacm.benchmarks import BENCHMARKS
    from hacm.data.synthetic import NTU60_NUM_CLASSES, NUM_CLASSES

    parts = json.loads((synthetic_stores / "report.json").read_text())["parts"]
    names = ["synthetic-ntu60", "synthetic-ntu120", "synthetic-pku1", "synthetic-pku2"]
    assert [p["dataset"] for p in parts] == names
    assert all(p["problems"] == [] and p["notices"] == [] for p in parts)
    assert parts[0]["files_skipped_missing_list"] > 0  # the synthetic missing list is honoured
    assert parts[0]["files_out_of_scope"] > 0  # NTU-60 leaves out the NTU-120 setups
    for benchmark in BENCHMARKS:
        classes = NUM_CLASSES if benchmark.startswith("ntu120") else NTU60_NUM_CLASSES
        for split in ("train", "test"):
            store = SkeletonStore(synthetic_stores / benchmark / split)
            assert store.num_classes == classes and store.info["dataset"] == "synthetic"
            assert set(store.labels.tolist()) == set(range(classes)), (benchmark, split)
            assert np.isfinite(store.frames).all()


def test_a_folder_link_loop_is_read_once_with_one_note(raw_folder, tmp_path, capsys):
    """Reliability probe 2, case 11 (S8): `dirloop -> ..` in the skeleton folder was followed 40 levels deep,
    every file read 40 times: 22,962 "duplicate sample name" lines and "97.6 % of the files are bad"."""
    raw, expected = raw_folder
    args = ["ntu60", "--raw", str(raw), "--workers", "1", "--max-bad-fraction", "0.5"]
    assert prepare_main([*args, "--out", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    (raw / "nturgb+d_skeletons" / "dirloop").symlink_to("..")
    assert prepare_main([*args, "--out", str(tmp_path / "looped")]) == 0
    printed = capsys.readouterr()
    stderr = printed.err
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())["parts"][0]
    looped = json.loads((tmp_path / "looped" / "report.json").read_text())["parts"][0]
    for key in ("files_found", "files_converted", "files_bad", "problems", "stores"):
        assert looped[key] == plain[key], key
    note = f"{raw / 'nturgb+d_skeletons' / 'dirloop'} links back to {raw.resolve()}, which holds it (a loop); skipped"
    assert looped["notices"] == [note] and plain["notices"] == []
    assert [line for line in stderr.splitlines() if "note:" in line] == [f"hacm.prepare: note: {note}"]
    assert "1 note;" in printed.out and sum(line.startswith("hacm.prepare: skipped") for line in stderr.splitlines()) \
        == len(expected)


def _tree(root: Path) -> None:
    """A raw folder with a linked dataset folder (as hacm.fetch makes), a second link to it, a link that sorts
    before the real folder it leads to, a loop, and a file linked under a second name."""
    (root / "raw" / "label").mkdir(parents=True)
    (root / "raw" / "skeleton").mkdir()
    (root / "elsewhere").mkdir()
    for path in (root / "raw" / "label" / "a.txt", root / "raw" / "skeleton" / "a.txt", root / "elsewhere" / "b.txt"):
        path.write_text("x")
    (root / "raw" / "extracted").symlink_to(root / "elsewhere")
    (root / "raw" / "extracted_again").symlink_to(root / "elsewhere")
    (root / "raw" / "a_link").symlink_to("skeleton")
    (root / "raw" / "skeleton" / "self").symlink_to(".")
    (root / "raw" / "skeleton" / "c.txt").symlink_to("a.txt")


def test_walk_files_reads_each_real_folder_and_file_once(tmp_path):
    from hacm.files import files_under, walk_files

    _tree(tmp_path)
    raw = tmp_path / "raw"
    walk = walk_files(raw, "*.txt")
    # The real skeleton/ is kept over a_link/ (the PKU reader tells skeletons from labels by folder name).
    assert walk.files == [raw / "extracted" / "b.txt", raw / "label" / "a.txt", raw / "skeleton" / "a.txt"]
    linked, again, loop, twice = walk.skipped
    assert linked.startswith(f"{raw / 'a_link'} leads to ") and linked.endswith(", a folder already walked; skipped")
    assert again.startswith(f"{raw / 'extracted_again'} leads to ") and f"(walked as {raw / 'extracted'})" in again
    assert loop == (f"{raw / 'skeleton' / 'self'} links back to {raw.resolve() / 'skeleton'}, which holds it "
                    "(a loop); skipped")
    assert twice == (f"{raw / 'skeleton'}: 1 file already found under another path (e.g. c.txt links to "
                     f"{raw / 'skeleton' / 'a.txt'}); not read twice")
    assert files_under(raw, "b.txt") == [raw / "extracted" / "b.txt"]


def test_walk_files_names_a_folder_it_cannot_read(tmp_path, monkeypatch):
    import os

    from hacm.files import walk_files

    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "a.txt").write_text("x")
    (tmp_path / "b.txt").write_text("x")
    scandir = os.scandir

    def refusing(path):
        if Path(path).name == "locked":  # as chmod 000 would, for a user other than root
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    walk = walk_files(tmp_path, "*.txt")
    assert walk.files == [tmp_path / "b.txt"]
    assert walk.skipped == [f"{tmp_path / 'locked'} could not be read (Permission denied); skipped"]


def test_pku_label_problems_name_the_label_file_and_keep_the_other_intervals(synthetic_raw, tmp_path, capsys):
    """Reliability probe 2, case 14: a bad label line dropped all intervals of its video and was reported
    against skeleton/<video>.txt; an interval ending past the video was cut silently."""
    from hacm.data.pku import read_pku_skeleton

    raw = tmp_path / "pku1"
    shutil.copytree(synthetic_raw / "pku1", raw)
    label = raw / "label" / "0001-L.txt"
    lines = label.read_text().splitlines()
    frames = len(read_pku_skeleton(raw / "skeleton" / "0001-L.txt"))
    lines[1] = "abc"  # was the video's second interval
    lines.append(f"3,{frames - 10},{frames + 40},1")  # ends 40 frames after the video
    label.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o"
    assert prepare_main(["pku1", "--raw", str(raw), "--out", str(out), "--workers", "1",
                         "--max-bad-fraction", "0.5"]) == 0
    report = json.loads((out / "report.json").read_text())["parts"][0]
    assert report["problems"] == [{"path": str(label), "reason": "line 2: expected 4 comma-separated fields "
                                                                       "(label,start,end,confidence), found 1: 'abc'"}]
    (notice,) = report["notices"]
    assert notice.startswith(f"{label}: line {len(lines)}: ") and f"ends after the {frames} frames" in notice
    names = [name for split in ("train", "test") for name in SkeletonStore(out / "pku1-xsub" / split).names.tolist()]
    kept = sorted(name for name in names if name.startswith("0001-L_"))
    assert kept == [f"0001-L_{n:03d}" for n in range(1, len(lines) + 1) if n != 2]
    assert "Traceback" not in capsys.readouterr().err


def test_many_notices_are_listed_in_the_report_and_summed_up_on_stderr(tmp_path, capsys):
    from hacm.data.convert import NOTICES_SHOWN, ConversionReport, finish_report

    report = ConversionReport(dataset="pku1", raw="raw", out=str(tmp_path / "o"), workers=1, files_found=3,
                              files_converted=3, notices=[f"label/{n}.txt: line 1: cut" for n in range(25)])
    assert finish_report([report], tmp_path / "staging", max_bad_fraction=0.0) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hacm.prepare: note:")]
    assert len(notes) == NOTICES_SHOWN + 1
    assert notes[-1] == (f"hacm.prepare: note: and {25 - NOTICES_SHOWN} more on pku1, listed under \"notices\" in "
                         f"{tmp_path / 'o' / 'report.json'}")
    assert len(json.loads((tmp_path / "staging" / "report.json").read_text())["parts"][0]["notices"]) == 25
