"""Split rules against the official sample lists (docs/method.md §1.4) and PKU-MMD split files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from hacm.data.splits import assign_split, read_pku_split_file

EXPECTED = {
    ("ntu60", "ntu60-xsub"): (40091, 16487),
    ("ntu60", "ntu60-xview"): (37646, 18932),
    ("ntu120", "ntu120-xsub"): (63026, 50919),
    ("ntu120", "ntu120-xset"): (54468, 59477),
}


@pytest.mark.parametrize(("dataset", "protocol"), list(EXPECTED))
def test_official_lists_give_the_published_counts(shared_data, dataset, protocol):
    names = (shared_data / "ntu_statistics" / dataset / "skes_available_name.txt").read_text().split()
    counts = Counter(assign_split(name, protocol) for name in names)
    assert (counts["train"], counts["test"]) == EXPECTED[dataset, protocol]


def test_missing_lists_are_what_was_removed(shared_data):
    stats = shared_data / "ntu_statistics"
    for dataset, missing, total in (("ntu60", "samples_with_missing_skeletons.txt", 56880),
                                    ("ntu120", "NTU_RGBD120_samples_with_missing_skeletons.txt", 114480)):
        available = set((stats / dataset / "skes_available_name.txt").read_text().split())
        removed = set((stats / dataset / missing).read_text().split())
        assert not available & removed and len(available) + len(removed) == total


def test_ntu60_benchmarks_refuse_ntu120_only_samples():
    with pytest.raises(ValueError, match="not an NTU RGB\\+D 60 sample"):
        assign_split("S018C001P008R001A061", "ntu60-xsub")
    assert assign_split("S018C001P008R001A061", "ntu120-xset") == "train"


def test_unknown_benchmark_and_bad_name_are_named():
    with pytest.raises(ValueError, match="unknown benchmark 'ntu60-xset'"):
        assign_split("S001C001P001R001A001", "ntu60-xset")
    with pytest.raises(ValueError, match="not an NTU sample name"):
        assign_split("S1C1P1R1A1", "ntu60-xsub")


def _split_file(path: Path, train: list[str], test: list[str] | None) -> Path:
    lines = ["Training videos: ", ", ".join(train)]
    if test is not None:
        lines += ["Validataion videos: ", ", ".join(test)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pku_split_file(tmp_path: Path):
    train, test = read_pku_split_file(_split_file(tmp_path / "cross-subject.txt", ["0002-L", "0002-M"], ["0291-L"]))
    assert train == {"0002-L", "0002-M"} and test == {"0291-L"}
    assert assign_split("0002-M_003", "pku1-xsub", pku_train=train, pku_test=test) == "train"
    assert assign_split("0291-L_001", "pku1-xsub", pku_train=train, pku_test=test) == "test"
    with pytest.raises(ValueError, match="neither list"):
        assign_split("0400-R_001", "pku1-xsub", pku_train=train, pku_test=test)
    train_only, none = read_pku_split_file(_split_file(tmp_path / "v.txt", ["A01N01-L"], None))
    assert none is None and assign_split("A02N01-L", "pku2-xview", pku_train=train_only) == "test"
    (tmp_path / "one_line.txt").write_text("Training videos:\n")
    with pytest.raises(ValueError, match="second line"):
        read_pku_split_file(tmp_path / "one_line.txt")
