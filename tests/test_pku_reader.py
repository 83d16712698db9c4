"""PKU-MMD reader: the real phase II sample, label intervals, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hacm.data.pku import MAX_PKU_FRAMES, cut_pku_samples, load_pku_video, read_pku_labels, read_pku_skeleton
from hacm.data.raw import SkeletonFormatError


def test_real_sample_reads_as_two_bodies(shared_data):
    skeleton = read_pku_skeleton(shared_data / "pku_samples" / "A10N08-L.txt")
    assert skeleton.shape == (1040, 2, 25, 3) and skeleton.dtype == np.float32
    assert np.isfinite(skeleton).all()
    assert int((~skeleton[:, 1].reshape(1040, -1).any(axis=1)).sum()) == 312
    first_line = (shared_data / "pku_samples" / "A10N08-L.txt").read_text().split("\n", 1)[0].split()
    np.testing.assert_allclose(skeleton[0].ravel(), np.array(first_line, dtype=np.float32))


def test_real_sample_cut_into_labelled_samples(shared_data, tmp_path: Path):
    label_file = tmp_path / "A10N08-L.txt"
    label_file.write_text("3,10,120,1\n51,200,650,2\n7,1030,1100,1\n")
    video = load_pku_video(shared_data / "pku_samples" / "A10N08-L.txt", label_file)
    samples = video.samples
    assert [s.name for s in samples] == ["A10N08-L_001", "A10N08-L_002", "A10N08-L_003"]
    assert [s.label for s in samples] == [2, 50, 6]
    assert [len(s.frames) for s in samples] == [111, MAX_PKU_FRAMES, 10]  # cut at 300, at the video end
    assert video.problems == [] and [file for file, _ in video.notices] == [str(label_file)]  # 1030-1100: 1040 frames
    for sample in samples:
        np.testing.assert_array_equal(sample.frames[0, 0, 1], 0.0)


def test_all_zero_interval_is_reported_not_kept(tmp_path: Path):
    skeleton = np.zeros((50, 2, 25, 3), np.float32)
    skeleton[:20] = 1.0
    (tmp_path / "labels.txt").write_text("1,0,10,1\n2,25,40,1\n3,60,70,1\n")
    labels, refused = read_pku_labels(tmp_path / "labels.txt")
    video = cut_pku_samples("0002-L", skeleton, labels, skeleton_file="skeleton/0002-L.txt",
                            label_file="label/0002-L.txt")
    assert refused == [] and [s.name for s in video.samples] == ["0002-L_001"]
    (zero_file, zero), (late_file, late) = video.problems
    assert zero_file == "skeleton/0002-L.txt" and "all joints are zero" in zero  # the frames are in the skeleton
    assert late_file == "label/0002-L.txt" and late.startswith("line 3: ") and "starts after the 50 frames" in late


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "empty"), ("1 2 3\n", "expected 150"), (" ".join(["x"] * 150) + "\n", "non-numeric"),
     (" ".join(["inf"] * 150) + "\n", "infinite"), (" ".join(["1e39"] * 150) + "\n", "beyond float32")],
)
def test_bad_skeleton_files(tmp_path: Path, text, reason):
    path = tmp_path / "0002-L.txt"
    path.write_text(text)
    with pytest.raises(SkeletonFormatError, match=reason):
        read_pku_skeleton(path)


@pytest.mark.parametrize(
    ("line", "why"),
    [("a,b,c,d", "'a' is not a whole number"), ("52,1,2,1", "label 52 outside 1..51"),
     ("0,1,2,1", "label 0 outside"), ("1,9,3,1", "end frame 3 before start frame 9"), ("1,2", "found 2"),
     ("1,-4,3,1", "negative start"), ("1 2 3 4", "found 1"), ("1,inf,9,1", "'inf' is not a whole number"),
     ("1,nan,9,1", "'nan'"), ("1,2.5,9,1", "'2.5'")],
)
def test_a_bad_label_line_is_one_problem_with_its_line_number(tmp_path: Path, line, why):
    path = tmp_path / "labels.txt"
    path.write_text(f"1,0,10,1\n\n{line}\n2,20,30,1\n")
    intervals, problems = read_pku_labels(path)
    assert [(i.label, i.number, i.line) for i in intervals] == [(1, 1, 1), (2, 3, 4)]  # the good lines kept
    assert len(problems) == 1 and problems[0].startswith("line 3: ") and why in problems[0], problems


@pytest.mark.parametrize("text", ["", "\n", " \n\n"])
def test_a_label_file_without_any_line_is_refused(tmp_path: Path, text):
    path = tmp_path / "labels.txt"
    path.write_text(text)
    with pytest.raises(SkeletonFormatError, match="lists no interval"):
        read_pku_labels(path)


def test_a_label_file_with_a_utf8_bom_is_read(tmp_path: Path):
    """Files saved by some Windows editors start with a byte-order mark; it is not part of the first label."""
    path = tmp_path / "0002-L.txt"
    path.write_bytes("\ufeff1,0,10,1\n2,25,40,2\n".encode("utf-8"))
    intervals, problems = read_pku_labels(path)
    assert [(i.label, i.start, i.end) for i in intervals] == [(1, 0, 10), (2, 25, 40)] and problems == []


def _pku_video_files(folder: Path, labels: str, frames: int = 120) -> tuple[Path, Path]:
    """skeleton/0003-M.txt of `frames` moving frames and label/0003-M.txt holding `labels`."""
    rng = np.random.default_rng(5)
    (folder / "skeleton").mkdir()
    (folder / "label").mkdir()
    skeleton = folder / "skeleton" / "0003-M.txt"
    values = rng.normal(0, 0.3, (frames, 150))
    skeleton.write_text("".join(" ".join(f"{v:.5f}" for v in row) + "\n" for row in values))
    label = folder / "label" / "0003-M.txt"
    label.write_text(labels)
    return skeleton, label


def test_a_bad_label_line_costs_its_own_interval_and_is_reported_against_the_label_file(tmp_path: Path):
    """Reliability probe 2, case 14: one bad line dropped all intervals of its video, and the message named
    skeleton/<video>.txt for a line of label/<video>.txt."""
    skeleton, label = _pku_video_files(tmp_path, "1,0,20,1\nabc\n3,30,50,2\n99,60,70,1\n5,80,90,1\n")
    video = load_pku_video(skeleton, label)
    assert [(s.name, s.label) for s in video.samples] == [("0003-M_001", 0), ("0003-M_003", 2), ("0003-M_005", 4)]
    assert [(file, reason.split(":")[0]) for file, reason in video.problems] == [(str(label), "line 2"),
                                                                                (str(label), "line 4")]
    assert "label 99 outside 1..51" in video.problems[1][1]


def test_unreadable_or_empty_label_file_is_reported_against_the_label_file(tmp_path: Path):
    skeleton, label = _pku_video_files(tmp_path, "")
    assert load_pku_video(skeleton, label).problems == [(str(label), "label file lists no interval")]
    label.unlink()
    ((file, reason),) = load_pku_video(skeleton, label).problems
    assert file == str(label) and reason.startswith("unreadable")


def test_an_interval_past_the_video_end_is_kept_cut_and_noted(tmp_path: Path):
    """Reliability probe 2, case 14: an end past the video was cut silently. docs/method.md §1.5: every labelled
    interval is one sample, so it is kept (cut at the last frame), with a notice naming the line."""
    skeleton, label = _pku_video_files(tmp_path, "1,0,20,1\n2,100,150,1\n3,110,119,1\n", frames=120)
    video = load_pku_video(skeleton, label)
    assert [len(s.frames) for s in video.samples] == [21, 20, 10] and video.problems == []
    ((file, note),) = video.notices  # 110-119 ends on the last frame: nothing cut
    assert file == str(label) and note.startswith("line 2: interval 100-150")
    assert "ends after the 120 frames" in note and str(skeleton) in note and "frames 100-119 kept" in note
