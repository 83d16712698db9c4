"""`python -m hacm.prepare import --from FILE`: MAMP / CTR-GCN .npz and pyskl .pkl files become our stores,
with lengths recovered from the padding, names kept where the format has them, and one-line errors."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest

from hacm.data.kinect import CENTRE_JOINT
from hacm.data.raw import NON_FINITE
from hacm.data.splits import assign_split
from hacm.data.storage import SkeletonStore
from hacm.prepare.__main__ import main as prepare_main

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


# --- every sample it cannot use is a bad sample, named; pyskl's own files import -----------------------


def import_(path, out, *more):
    return prepare_main(["import", "--from", str(path), "--out", str(out), *more])


def problems(out):
    return {problem["path"].split("::")[-1]: problem["reason"]
            for part in json.loads((out / "report.json").read_text())["parts"] for problem in part["problems"]}


def npz_with(tmp_path, *, x=None, y=None, dtype=np.float32):
    """NTU60_XSub.npz with 4 good train and 1 good test samples, unless x / y say otherwise."""
    path = tmp_path / "NTU60_XSub.npz"
    x = padded([5, 6, 7, 8], 0).astype(dtype) if x is None else x
    np.savez(path, x_train=x, y_train=one_hot([1, 2, 3, 4]) if y is None else y, x_test=padded([4], 1),
             y_test=one_hot([5]))
    return path


@pytest.mark.parametrize("value, dtype", [(np.nan, np.float32), (np.inf, np.float32), (1e39, np.float64)])
def test_an_npz_value_not_finite_in_float32_is_a_bad_sample_as_in_the_raw_readers(tmp_path, capsys, value, dtype):
    """1e39 is finite in float64 and inf in float32, the stores' dtype: checked after the cast, silently."""
    x = padded([5, 6, 7, 8], 0).astype(dtype)
    x[1, 2, 7] = value
    path = npz_with(tmp_path, x=x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "overflow encountered in cast" for the user
        assert import_(path, tmp_path / "strict") == 1
        assert import_(path, tmp_path / "data", "--max-bad-fraction", "0.25") == 0
    assert problems(tmp_path / "data") == {"train-000001": NON_FINITE}
    store = SkeletonStore(tmp_path / "data" / "ntu60-xsub" / "train")
    assert store.names.tolist() == ["train-000000", "train-000002", "train-000003"]
    assert np.isfinite(np.asarray(store.frames)).all()
    assert "1 bad" in capsys.readouterr().out


@pytest.mark.parametrize("row, why", [
    (np.zeros(60, np.float32), "all zero"),
    (np.eye(60, dtype=np.float32)[[3, 7]].sum(axis=0), "2 ones"),
    (np.eye(60, dtype=np.float32)[3] * 0.9, "values other than 0 and 1"),
    (np.where(np.eye(60)[3] == 1, 1.0, np.nan).astype(np.float32), "values other than 0 and 1"),
])
def test_a_label_row_that_is_not_one_hot_is_a_bad_sample_not_class_0(tmp_path, row, why):
    y = one_hot([1, 2, 3, 4])
    y[2] = row
    assert import_(npz_with(tmp_path, y=y), tmp_path / "data", "--max-bad-fraction", "0.25") == 0
    assert problems(tmp_path / "data") == {"train-000002": f"its y_train row is not one-hot ({why})"}
    store = SkeletonStore(tmp_path / "data" / "ntu60-xsub" / "train")
    assert store.names.tolist() == ["train-000000", "train-000001", "train-000003"]
    assert store.labels.tolist() == [1, 2, 4]


def test_float_and_integer_one_hot_rows_give_their_class(tmp_path):
    y = one_hot([1, 2, 3, 4]).astype(np.float64)
    assert import_(npz_with(tmp_path, y=y), tmp_path / "f64") == 0
    assert import_(npz_with(tmp_path, y=y.astype(np.uint8)), tmp_path / "u8") == 0
    for out in ("f64", "u8"):
        assert SkeletonStore(tmp_path / out / "ntu60-xsub" / "train").labels.tolist() == [1, 2, 3, 4]


PYSKL_NAMES = ("S001C001P001R001A001", "S001C001P002R001A002")


def pyskl_file(folder, *, protocol=2, annotations=None, split=None, **document):
    """ntu60_3danno.pkl as pyskl's tools/data/ntu_preproc.py writes it: mmcv.dump, pickle protocol 2."""
    names = PYSKL_NAMES
    if annotations is None:
        annotations = [{"frame_dir": name, "label": index, "total_frames": 30,
                        "keypoint": np.ones((1, 30, 25, 3), np.float16) * (index + 1)}
                       for index, name in enumerate(names)]
    split = {"xsub_train": [names[0]], "xsub_val": [names[1]]} if split is None else split
    path = folder / "ntu60_3danno.pkl"
    with open(path, "wb") as stream:
        pickle.dump({"split": split, "annotations": annotations, **document}, stream, protocol=protocol)
    return path


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_pyskl_files_of_the_old_pickle_protocols_import(tmp_path, protocol):
    """At protocols 0-2 an array's bytes are rebuilt by _codecs.encode(text, 'latin1'); pyskl writes 2."""
    assert import_(pyskl_file(tmp_path, protocol=protocol), tmp_path / "data") == 0
    for split, name, label in (("train", PYSKL_NAMES[0], 0), ("test", PYSKL_NAMES[1], 1)):
        store = SkeletonStore(tmp_path / "data" / "ntu60-xsub" / split)
        assert store.names.tolist() == [name] and store.labels.tolist() == [label]
        assert store.lengths.tolist() == [30]


class Encoder:
    """_codecs.encode called as no array calls it."""

    def __reduce__(self):
        import codecs

        return (codecs.encode, ("abc", "rot13"))


class Command:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


class Evaluator:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("payload, words", [
    (lambda marker: Command(marker), "refers to posix.system, which an annotation file does not need"),
    (lambda marker: Evaluator(), "refers to __builtin__.eval"),
    (lambda marker: Encoder(), "calls _codecs.encode otherwise than to rebuild an array's bytes"),
])
def test_a_protocol_2_pickle_calling_anything_else_is_still_refused_and_nothing_runs(tmp_path, capsys, payload,
                                                                                      words):
    marker = tmp_path / "ran"
    annotations = [{"frame_dir": PYSKL_NAMES[0], "label": 0, "keypoint": payload(marker)}]
    path = pyskl_file(tmp_path, annotations=annotations)
    assert import_(path, tmp_path / "data") == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and words in error[0], error
    assert not marker.exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("document, words", [
    ({"split": ["xsub_train"]}, "'split' is a list, expected a dict of sample-name lists"),
    ({"split": {"xsub_train": "S001C001P001R001A001"}}, "split 'xsub_train' is a str, expected a list"),
    ({"annotations": 5}, "'annotations' is a int, expected a list of dicts"),
])
def test_a_malformed_pyskl_file_is_one_line_naming_the_file(tmp_path, capsys, document, words):
    path = pyskl_file(tmp_path, **document)
    assert import_(path, tmp_path / "data") == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(path) in error[0] and words in error[0], error
    assert not (tmp_path / "data").exists()


def annotation(**fields):
    good = {"frame_dir": PYSKL_NAMES[1], "label": 1, "keypoint": np.ones((1, 30, 25, 3), np.float32)}
    return {key: value for key, value in {**good, **fields}.items() if value is not ...}


@pytest.mark.parametrize("bad, place, why", [
    (annotation(label=None), PYSKL_NAMES[1], "label None is not a class index (0..59)"),
    (annotation(label="walk"), PYSKL_NAMES[1], "label 'walk' is not a class index (0..59)"),
    (annotation(label=2.0), PYSKL_NAMES[1], "label 2.0 is not a class index (0..59)"),
    (annotation(label=...), PYSKL_NAMES[1], "no 'label'"),
    (annotation(label=60), PYSKL_NAMES[1], "label 60 outside 0..59"),
    (annotation(keypoint="abc"), PYSKL_NAMES[1], "keypoint is a str, not an array of numbers"),
    (annotation(keypoint=np.array([["1.5"]])), PYSKL_NAMES[1], "keypoint is an array of <U3, not an array of numbers"),
    (annotation(keypoint=[[1.0], [1.0, 2.0]]), PYSKL_NAMES[1],
     "keypoint is not an array of numbers (its rows differ in length)"),
    (annotation(keypoint=...), PYSKL_NAMES[1], "no 'keypoint'"),
    (annotation(keypoint=np.full((1, 30, 25, 3), np.nan, np.float32)), PYSKL_NAMES[1], NON_FINITE),
    (annotation(keypoint=np.full((1, 30, 25, 3), 1e39)), PYSKL_NAMES[1], NON_FINITE),
    (annotation(frame_dir=...), "annotations[1]", "no sample name: 'frame_dir' is missing"),
    (annotation(frame_dir=7), "annotations[1]", "'frame_dir' is a int, expected the sample name"),
    ("S001C001P002R001A002", "annotations[1]", "an annotation is a str, expected a dict"),
])
def test_a_malformed_pyskl_annotation_is_a_bad_sample_named_in_one_line(tmp_path, capsys, bad, place, why):
    good = annotation(frame_dir=PYSKL_NAMES[0], label=0)
    path = pyskl_file(tmp_path, annotations=[good, bad, annotation(frame_dir="S001C001P003R001A003", label=2)],
                      split={"xsub_train": [PYSKL_NAMES[0]], "xsub_val": ["S001C001P003R001A003", PYSKL_NAMES[1]]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert import_(path, tmp_path / "data", "--max-bad-fraction", "1") == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("hacm.prepare: skipped ") for line in lines), lines
    found = problems(tmp_path / "data")
    assert found[place] == why
    if place != PYSKL_NAMES[1]:  # the split list still names the sample nothing annotates
        assert found[PYSKL_NAMES[1]] == "in the ntu60-xsub split lists, not annotated"
    assert SkeletonStore(tmp_path / "data" / "ntu60-xsub" / "test").names.tolist() == ["S001C001P003R001A003"]


def test_a_bad_pyskl_sample_in_two_benchmarks_is_reported_once(tmp_path, capsys):
    annotations = [annotation(frame_dir=PYSKL_NAMES[0], label=0), annotation(label=None),
                   annotation(frame_dir="S001C002P003R001A003", label=2)]
    split = {"xsub_train": [PYSKL_NAMES[0]], "xsub_val": [PYSKL_NAMES[1], "S001C002P003R001A003"],
             "xview_train": [PYSKL_NAMES[1], "S001C002P003R001A003"], "xview_val": [PYSKL_NAMES[0]]}
    assert import_(pyskl_file(tmp_path, annotations=annotations, split=split), tmp_path / "data",
                   "--max-bad-fraction", "0.5") == 0
    assert capsys.readouterr().err.count(PYSKL_NAMES[1]) == 1


def test_a_value_that_overflows_when_centred_is_a_bad_sample(tmp_path):
    """Finite in float32 as read, but 3e38 - (-3e38) is inf: the rule holds for what is stored."""
    x = padded([5, 6, 7, 8], 0)
    x[3] = 0.0
    x[3, :4] = -3e38  # the centre joint of the first frame is the origin
    x[3, 2, 80] = 3e38
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert import_(npz_with(tmp_path, x=x), tmp_path / "data", "--max-bad-fraction", "0.25") == 0
    assert problems(tmp_path / "data") == {"train-000003": NON_FINITE}
