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
    samples, problems = load_pku_video(shared_data / "pku_samples" / "A10N08-L.txt", label_file)
    assert [s.name for s in samples] == ["A10N08-L_001", "A10N08-L_002", "A10N08-L_003"]
    assert [s.label for s in samples] == [2, 50, 6]
    assert [len(s.frames) for s in samples] == [111, MAX_PKU_FRAMES, 10]  # cut at 300, at the video end
    assert problems == []
    for sample in samples:
        np.testing.assert_array_equal(sample.frames[0, 0, 1], 0.0)


def test_all_zero_interval_is_reported_not_kept(tmp_path: Path):
    skeleton = np.zeros((50, 2, 25, 3), np.float32)
    skeleton[:20] = 1.0
    (tmp_path / "labels.txt").write_text("1,0,10,1\n2,25,40,1\n3,60,70,1\n")
    labels = read_pku_labels(tmp_path / "labels.txt")
    samples, problems = cut_pku_samples("0002-L", skeleton, labels)
    assert [s.name for s in samples] == ["0002-L_001"]
    assert "all joints are zero" in problems[0] and "starts after" in problems[1]


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


@pytest.mark.parametrize("text", ["a,b,c,d\n", "52,1,2,1\n", "1,9,3,1\n", "\n"])
def test_bad_label_files(tmp_path: Path, text):
    path = tmp_path / "labels.txt"
    path.write_text(text)
    with pytest.raises(SkeletonFormatError):
        read_pku_labels(path)


def test_a_label_file_with_a_utf8_bom_is_read(tmp_path: Path):
    """Files saved by some Windows editors start with a byte-order mark; it is not part of the first label."""
    path = tmp_path / "0002-L.txt"
    path.write_bytes("\ufeff1,0,10,1\n2,25,40,2\n".encode("utf-8"))
    assert [(i.label, i.start, i.end) for i in read_pku_labels(path)] == [(1, 0, 10), (2, 25, 40)]
