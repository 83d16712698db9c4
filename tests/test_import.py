"""`python -m hacm.prepare import --from FILE`: MAMP / CTR-GCN .npz and pyskl .pkl files become our stores,
with lengths recovered from the padding, names kept where the format has them, and one-line errors."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from hacm.data.kinect import CENTRE_JOINT
from hacm.data.splits import assign_split
from hacm.data.storage import SkeletonStore
from hacm.prepare import main as prepare_main

PADDED = 20


def padded(lengths: list[int], seed: int) -> np.ndarray:
    """(N, 20, 150) CTR-GCN-style sequences: random frames, then zeros."""
    rng = np.random.default_rng(seed)
    x = np.zeros((len(lengths), PADDED, 150), dtype=np.float32)
    for index, length in enumerate(lengths):
        x[index, :length] = rng.normal(size=(length, 150)) + 1.0
    return x


def one_hot(labels: list[int], classes: int = 60) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[labels]


def test_an_npz_becomes_the_benchmarks_stores_with_lengths_from_the_padding(tmp_path):
    lengths = {"train": [20, 7, 13, 1], "test": [5, 20]}
    labels = {"train": [0, 59, 3, 3], "test": [10, 11]}
    path = tmp_path / "NTU60_XSub.npz"
    np.savez(path, x_train=padded(lengths["train"], 0), y_train=one_hot(labels["train"]),
             x_test=padded(lengths["test"], 1), y_test=one_hot(labels["test"]))
    assert prepare_main(["import", "--from", str(path), "--out", str(tmp_path / "data")]) == 0
    for split in ("train", "test"):
        store = SkeletonStore(tmp_path / "data" / "ntu60-xsub" / split)
        assert store.info["benchmark"] == "ntu60-xsub" and store.info["num_classes"] == 60
        assert store.lengths.tolist() == lengths[split] and store.labels.tolist() == labels[split]
        first = np.asarray(store.frames[store.offsets[0]])  # centred as our conversion centres
        np.testing.assert_allclose(first[0, CENTRE_JOINT], 0.0, atol=1e-6)
    assert (tmp_path / "data" / "report.json").is_file()


def test_a_pyskl_pickle_keeps_names_and_its_splits_agree_with_ours(tmp_path):
    names = ["S001C001P001R001A001", "S001C002P003R002A010", "S002C003P002R001A060", "S003C002P004R002A050"]
    rng = np.random.default_rng(0)
    annotations = [{"frame_dir": name, "label": int(name[-3:]) - 1, "total_frames": 9,
                    "keypoint": rng.normal(size=(1 + index % 2, 9, 25, 3)).astype(np.float32)}
                   for index, name in enumerate(names)]
    split = {f"{protocol}_{part}": [n for n in names if assign_split(n, f"ntu60-{protocol}") == ours]
             for protocol in ("xsub", "xview") for part, ours in (("train", "train"), ("val", "test"))}
    path = tmp_path / "ntu60_3danno.pkl"
    path.write_bytes(pickle.dumps({"split": split, "annotations": annotations}))
    assert prepare_main(["import", "--from", str(path), "--out", str(tmp_path / "data")]) == 0
    for benchmark in ("ntu60-xsub", "ntu60-xview"):
        for part, ours in (("train", "train"), ("val", "test")):
            store = SkeletonStore(tmp_path / "data" / benchmark / ours)
            kept = store.names.tolist()
            assert kept == split[f"{benchmark.split('-')[1]}_{part}"]
            assert all(assign_split(name, benchmark) == ours for name in kept)  # our rule, their lists
    store = SkeletonStore(tmp_path / "data" / "ntu60-xsub" / "train")
    assert store.metadata["performer"].tolist() == [1, 2, 4] and store.lengths.tolist() == [9, 9, 9]
    report = json.loads((tmp_path / "data" / "report.json").read_text())
    assert [part["files_converted"] for part in report["parts"]] == [4]  # each sample once, not once per benchmark


def test_bad_samples_count_one_by_one_against_max_bad_fraction(tmp_path):
    """An all-zero sample is a problem named by its place in the file; the share of bad samples, not
    of bad files (one file here), is what --max-bad-fraction bounds."""
    path = tmp_path / "NTU60_XSub.npz"
    np.savez(path, x_train=padded([5, 0, 7, 3], 0), y_train=one_hot([1, 2, 3, 4]), x_test=padded([4], 1),
             y_test=one_hot([5]))
    assert prepare_main(["import", "--from", str(path), "--out", str(tmp_path / "strict")]) == 1  # 1 of 5 bad
    assert prepare_main(["import", "--from", str(path), "--out", str(tmp_path / "data"),
                         "--max-bad-fraction", "0.25"]) == 0
    report = json.loads((tmp_path / "data" / "report.json").read_text())
    assert report["parts"][0]["files_bad"] == 1 and report["parts"][0]["files_converted"] == 4
    assert any(problem["path"] == f"{path}::train-000001" for problem in report["parts"][0]["problems"])
    assert SkeletonStore(tmp_path / "data" / "ntu60-xsub" / "train").lengths.tolist() == [5, 7, 3]


class Shell:
    def __reduce__(self):
        import os

        return (os.system, ("true",))


def text_file(folder):
    (folder / "NTU60_XSub.txt").write_text("x")
    return folder / "NTU60_XSub.txt"


def unnamed_npz(folder):
    np.savez(folder / "mine.npz", x_train=np.zeros(1))
    return folder / "mine.npz"


def npz_without_labels(folder):
    np.savez(folder / "NTU60_XView.npz", x_train=np.zeros(1))
    return folder / "NTU60_XView.npz"


def pickle_that_runs_a_command(folder):
    (folder / "ntu60_3danno.pkl").write_bytes(pickle.dumps({"split": {}, "annotations": [Shell()]}))
    return folder / "ntu60_3danno.pkl"


@pytest.mark.parametrize("make, words", [
    (text_file, "expected a MAMP / CTR-GCN .npz"),
    (unnamed_npz, "cannot tell the benchmark"),
    (npz_without_labels, "expected the arrays x_test, x_train, y_test, y_train; found x_train"),
    (pickle_that_runs_a_command, "which an annotation file does not need"),
])
def test_a_file_it_cannot_import_is_one_line(tmp_path, capsys, make, words):
    path = make(tmp_path)
    assert prepare_main(["import", "--from", str(path), "--out", str(tmp_path / "data")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and words in error[0], error
    assert not (tmp_path / "data").exists()


def test_import_takes_from_not_raw(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        prepare_main(["import", "--raw", str(tmp_path), "--out", str(tmp_path / "data")])
    assert exit_.value.code == 2 and "import takes --from FILE" in capsys.readouterr().err
