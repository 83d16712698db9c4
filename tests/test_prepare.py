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
from hacm.prepare import main as prepare_main

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
    assert all(p["problems"] == [] for p in parts)
    assert parts[0]["files_skipped_missing_list"] > 0  # the synthetic missing list is honoured
    assert parts[0]["files_out_of_scope"] > 0  # NTU-60 leaves out the NTU-120 setups
    for benchmark in BENCHMARKS:
        classes = NUM_CLASSES if benchmark.startswith("ntu120") else NTU60_NUM_CLASSES
        for split in ("train", "test"):
            store = SkeletonStore(synthetic_stores / benchmark / split)
            assert store.num_classes == classes and store.info["dataset"] == "synthetic"
            assert set(store.labels.tolist()) == set(range(classes)), (benchmark, split)
            assert np.isfinite(store.frames).all()
