"""Stores from files researchers already hold (`python -m hacm.prepare import --from FILE`).

Two formats:

- `.npz` as MAMP and CTR-GCN write them (`NTU60_XSub.npz`, ...): `x_train` / `x_test` of shape
  (N, 300, 150) (frames x 2 bodies x 25 joints x xyz, zero-padded at the end), `y_train` / `y_test`
  one-hot (N, classes) or class indices. CTR-GCN's `seq_transformation` already denoised the bodies
  (its own rules, close to ours), dropped empty frames, centred every frame on the first frame's
  spine-middle joint and padded to 300 frames; the file keeps no sample names, so samples are named
  `<split>-<index>`. One file is one benchmark, told by its name or by --benchmark. The arrays are
  streamed out of the archive a sample at a time, so memory stays flat however big the file.
- `.pkl` as pyskl writes them (`ntu60_3danno.pkl`, `ntu120_3danno.pkl`): `split` (lists of sample
  names, `xsub_train` / `xsub_val`, `xview_*` or `xset_*`) and `annotations` (`frame_dir`, 0-based
  `label`, `keypoint` of shape bodies x frames x 25 x 3). pyskl kept Kinect coordinates after its own
  denoising; names are kept, so our split rules can be checked against theirs (hacm.data.splits).
  Read with an unpickler that accepts only numpy arrays and plain containers, at any pickle protocol
  (pyskl's own files are protocol 2, mmcv's default).

Either way the lengths are recovered from the zero padding (trailing all-zero frames dropped) and each
sequence is centred as our conversion centres it (hacm.data.normalise; a no-op on CTR-GCN's frames). A
sample that cannot be used (a NaN or a value beyond float32, a label that is not a class, a malformed
annotation) is a problem named by its place in the file and counts against --max-bad-fraction, as a bad
raw file does; a file that is not of the format at all is one error line.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np

from hacm.benchmarks import BENCHMARKS, DATASETS
from hacm.data.convert import ConversionError, ConversionReport, Problem, StoreSet
from hacm.data.normalise import EmptySequenceError, normalise_sequence
from hacm.data.kinect import FRAME_SHAPE
from hacm.data.ntu import NTU_NAME, parse_ntu_name
from hacm.data.raw import SkeletonFormatError, store_coordinates
from hacm.data.storage import SampleMeta

FORMATS = (".npz", ".pkl")
_NPZ_BENCHMARK = re.compile(r"(ntu60|ntu120)_(xsub|xview|xset)", re.IGNORECASE)
_PKL_SPLITS = {"train": "train", "val": "test", "test": "test"}
_PICKLE_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                   ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                   ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict"),
                   ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer")}


class BadSample(ValueError):
    """One sample of an imported file that cannot be used; the message says why."""


# Why a sample is left out: its own defects, the stores' finiteness rule, or no frame at all.
UNUSABLE = (BadSample, SkeletonFormatError, EmptySequenceError)


def import_file(path: Path, out: Path, *, report: ConversionReport, benchmark: str | None = None) -> None:
    """Write the stores of `path` (a .npz or .pkl file) into `out`, one problem per unusable sample."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ConversionError(f"--from {path}: no such file")
    if suffix == ".npz":
        _import_npz(path, out, report=report, benchmark=_npz_benchmark(path, benchmark))
    elif suffix in (".pkl", ".pickle"):
        _import_pkl(path, out, report=report, dataset=_pkl_dataset(path, benchmark))
    else:
        raise ConversionError(f"--from {path}: expected a MAMP / CTR-GCN .npz or a pyskl .pkl file")


def trimmed(sequence: np.ndarray) -> np.ndarray:
    """(T, 2, 25, 3) without its trailing all-zero frames (the padding)."""
    used = np.flatnonzero(sequence.reshape(len(sequence), -1).any(axis=1))
    return sequence[: used[-1] + 1] if len(used) else sequence[:0]


def sample_place(path: Path, name: str) -> str:
    """A sample's place in a report: each sample of an imported file counts as one file, so that
    --max-bad-fraction is the share of bad samples, as for raw files."""
    return f"{path}::{name}"


def stored_frames(sequence: np.ndarray) -> np.ndarray:
    """(T, 2, 25, 3) as read, of any numeric dtype -> the float32 frames a store keeps: padding dropped,
    centred. Raises one of UNUSABLE, saying why the sample cannot be kept."""
    sequence = trimmed(store_coordinates(sequence))  # the raw readers' rule: finite in float32
    if len(sequence) == 0:
        raise EmptySequenceError("every frame is zero")
    return normalise_sequence(sequence)


# ---------------------------------------------------------------------------------------------- .npz


def _npz_benchmark(path: Path, explicit: str | None) -> str:
    if explicit is not None:
        if explicit not in BENCHMARKS:
            raise ConversionError(f"--benchmark {explicit}: not one of {', '.join(BENCHMARKS)}")
        return explicit
    match = _NPZ_BENCHMARK.search(path.stem)
    if match is None or f"{match[1]}-{match[2]}".lower() not in BENCHMARKS:
        raise ConversionError(f"--from {path.name}: cannot tell the benchmark from the file name; give --benchmark "
                              f"(one of {', '.join(BENCHMARKS)})")
    return f"{match[1]}-{match[2]}".lower()


def _npy_rows(archive: zipfile.ZipFile, member: str, path: Path):
    """(shape, iterator over the first axis) of an .npy member, read a row at a time."""
    stream = archive.open(member)
    version = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(stream)
    if fortran or dtype.kind not in "biuf":  # strings would be parsed as numbers, complex values halved
        raise ConversionError(f"{path}: {member} is not a plain C-ordered numeric array")
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize

    def rows():
        with stream:
            for _ in range(shape[0]):
                data = stream.read(row_bytes)
                if len(data) != row_bytes:
                    raise ConversionError(f"{path}: {member} is cut short")
                yield np.frombuffer(data, dtype=dtype).reshape(shape[1:])

    return shape, rows()


def _import_npz(path: Path, out: Path, *, report: ConversionReport, benchmark: str) -> None:
    dataset = BENCHMARKS[benchmark].dataset
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ConversionError(f"{path}: not a readable .npz file") from None
    with archive:
        members = {name.removesuffix(".npy") for name in archive.namelist()}
        expected = {"x_train", "y_train", "x_test", "y_test"}
        if not expected <= members:
            raise ConversionError(f"{path}: expected the arrays {', '.join(sorted(expected))}; found "
                                  f"{', '.join(sorted(members)) or 'none'}")
        num_classes = DATASETS[dataset].num_classes
        info = {"dataset": dataset, "num_classes": num_classes, "imported_from": path.name,
                "format": "npz (MAMP / CTR-GCN)"}
        with StoreSet(out, [benchmark], info).committed(report) as stores:
            for split in ("train", "test"):
                labels, bad_labels = _npz_labels(archive, f"y_{split}", path, dataset=dataset)
                shape, rows = _npy_rows(archive, f"x_{split}.npy", path)
                if len(shape) != 3 or shape[2] != int(np.prod(FRAME_SHAPE)) or shape[0] != len(labels):
                    raise ConversionError(f"{path}: x_{split} has shape {shape}; expected ({len(labels)}, frames, "
                                          f"{int(np.prod(FRAME_SHAPE))}) to go with y_{split}")
                report.files_found += shape[0]
                for index, row in enumerate(rows):
                    name = f"{split}-{index:06d}"
                    try:
                        if index in bad_labels:
                            raise BadSample(bad_labels[index])
                        frames = stored_frames(row.reshape(shape[1], *FRAME_SHAPE))
                    except UNUSABLE as error:
                        report.problems.append(Problem(sample_place(path, name), str(error)))
                        continue
                    stores.add(benchmark, split, frames, SampleMeta(name=name, label=int(labels[index])))
                    report.files_converted += 1


def _npz_labels(archive: zipfile.ZipFile, name: str, path: Path, *, dataset: str) -> tuple[np.ndarray, dict[int, str]]:
    """The class of every sample, and why a sample has none (its one-hot row is not one-hot).

    A bad one-hot row is one bad sample. Class indices are checked as a whole: 1-based indices would
    fail only at the last class, and every other sample would silently get the next class."""
    num_classes = DATASETS[dataset].num_classes
    try:
        with archive.open(f"{name}.npy") as stream:
            labels = np.lib.format.read_array(io.BytesIO(stream.read()), allow_pickle=False)
    except ValueError as error:
        raise ConversionError(f"{path}: {name} is not a plain numeric array ({error})") from None
    expected = f"{path}: {name} must hold classes 0..{num_classes - 1} (indices or one-hot)"
    if labels.dtype.kind not in "biuf" or labels.ndim not in (1, 2):
        raise ConversionError(expected)
    if labels.ndim == 2:
        if labels.shape[1] != num_classes:
            raise ConversionError(f"{path}: {name} is one-hot over {labels.shape[1]} classes; {dataset} has "
                                  f"{num_classes}")
        hot = labels == 1  # exactly: a one-hot file has no label smoothing
        ones = hot.sum(axis=1).tolist()
        zero_or_one = (hot | (labels == 0)).all(axis=1).tolist()
        bad = {index: f"its {name} row is not one-hot ({_one_hot_fault(ones[index], zero_or_one[index])})"
               for index in range(len(labels)) if ones[index] != 1 or not zero_or_one[index]}
        return hot.argmax(axis=1), bad
    if not np.isfinite(labels).all() or (labels != np.round(labels)).any():
        raise ConversionError(expected)
    if len(labels) and not 0 <= labels.min() <= labels.max() < num_classes:
        raise ConversionError(expected)
    return labels.astype(np.int64), {}


def _one_hot_fault(ones: int, zero_or_one: bool) -> str:
    if not zero_or_one:
        return "values other than 0 and 1"
    return "all zero" if ones == 0 else f"{ones} ones"


# ---------------------------------------------------------------------------------------------- .pkl


def _latin1_bytes(*args) -> bytes:
    """`_codecs.encode` as pickle protocols 0-2 use it: bytes (a numpy array's data) travel as latin-1 text,
    rebuilt by encode(text, 'latin1'). That call and no other: anything else is refused."""
    if len(args) != 2 or not isinstance(args[0], str) or not isinstance(args[1], str) or args[1] != "latin1":
        raise pickle.UnpicklingError("it calls _codecs.encode otherwise than to rebuild an array's bytes")
    return args[0].encode("latin1")


def _empty_bytes(*args) -> bytes:
    """`bytes()` as protocols 0-2 write empty bytes (a zero-size array's data); bytes(n) with an argument
    would allocate n bytes, and is refused."""
    if args:
        raise pickle.UnpicklingError("it calls bytes() otherwise than to make empty bytes")
    return b""


# Callables that old protocols name, replaced by versions that accept only the arguments they are given
# there (Python 3 writes builtins as __builtin__ at protocols 0-2).
_PICKLE_CALLS = {("_codecs", "encode"): _latin1_bytes, ("__builtin__", "bytes"): _empty_bytes,
                 ("builtins", "bytes"): _empty_bytes}


class _ArraysOnly(pickle.Unpickler):
    """Numpy arrays and plain containers only: a pickle naming anything else is refused, not run."""

    def find_class(self, module: str, name: str):
        if (module, name) in _PICKLE_CALLS:
            return _PICKLE_CALLS[module, name]
        if (module, name) in _PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which an annotation file does not need")


def _pkl_dataset(path: Path, explicit: str | None) -> str:
    if explicit is not None:
        dataset = BENCHMARKS[explicit].dataset if explicit in BENCHMARKS else explicit
        if dataset not in DATASETS or DATASETS[dataset].family != "ntu":
            raise ConversionError(f"--benchmark {explicit}: a pyskl file holds an NTU dataset (ntu60 or ntu120)")
        return dataset
    match = re.search(r"ntu(60|120)", path.stem, re.IGNORECASE)
    if match is None:
        raise ConversionError(f"--from {path.name}: cannot tell ntu60 from ntu120 by the name; give --benchmark")
    return f"ntu{match[1]}"


def _import_pkl(path: Path, out: Path, *, report: ConversionReport, dataset: str) -> None:
    split_lists, annotations = _read_pkl(path)
    parts = {}  # benchmark -> {name: our split}
    for key, names in split_lists.items():
        protocol, _, part = str(key).partition("_")
        benchmark = f"{dataset}-{protocol}"
        if benchmark in BENCHMARKS and part in _PKL_SPLITS:
            parts.setdefault(benchmark, {}).update({str(name): _PKL_SPLITS[part] for name in names})
    if not parts:
        raise ConversionError(f"{path}: its split lists ({', '.join(map(str, split_lists)) or 'none'}) name no "
                              f"benchmark of {dataset}")
    num_classes = DATASETS[dataset].num_classes
    info = {"dataset": dataset, "num_classes": num_classes, "imported_from": path.name, "format": "pkl (pyskl)"}
    with StoreSet(out, list(parts), info).committed(report) as stores:
        annotated = _annotations_by_name(annotations, report=report, path=path)
        report.files_found = len(annotations)
        listed = {name for membership in parts.values() for name in membership}
        report.files_out_of_scope = len(set(annotated) - listed)  # in no split list: no store wants them
        converted, bad = set(), set()  # a sample goes into both benchmarks of its dataset: counted once
        for benchmark, membership in parts.items():
            for name, split in membership.items():
                if name in bad:  # its problem is reported once
                    continue
                try:
                    if name not in annotated:
                        raise BadSample(f"in the {benchmark} split lists, not annotated")
                    frames, meta = _annotation_sample(annotated[name], num_classes=num_classes)
                except UNUSABLE as error:
                    report.problems.append(Problem(sample_place(path, name), str(error)))
                    bad.add(name)
                    continue
                stores.add(benchmark, split, frames, meta)
                converted.add(name)
        report.files_converted = len(converted)


def _read_pkl(path: Path) -> tuple[dict, list]:
    """The split lists and the annotations of a pyskl file; ConversionError if it is not one."""
    try:
        with open(path, "rb") as stream:
            document = _ArraysOnly(stream).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise ConversionError(f"{path}: not a pyskl annotation file ({error})") from None
    if not isinstance(document, dict) or not {"split", "annotations"} <= set(document):
        raise ConversionError(f"{path}: expected a dict with 'split' and 'annotations'")
    split_lists, annotations = document["split"], document["annotations"]
    if not isinstance(split_lists, dict):
        raise ConversionError(f"{path}: 'split' is a {type(split_lists).__name__}, expected a dict of sample-name "
                              f"lists (xsub_train: [...], ...)")
    for key, names in split_lists.items():
        if not isinstance(names, (list, tuple)) and not (isinstance(names, np.ndarray) and names.ndim == 1):
            raise ConversionError(f"{path}: split {key!r} is a {type(names).__name__}, expected a list of sample "
                                  f"names")
    if not isinstance(annotations, (list, tuple)):
        raise ConversionError(f"{path}: 'annotations' is a {type(annotations).__name__}, expected a list of dicts")
    return split_lists, list(annotations)


def _annotations_by_name(annotations: list, *, report: ConversionReport, path: Path) -> dict[str, dict]:
    """Each annotation under its sample name; one that cannot be named is a problem placed by its index."""
    named = {}
    for index, annotation in enumerate(annotations):
        place = sample_place(path, f"annotations[{index}]")
        name = annotation.get("frame_dir") if isinstance(annotation, dict) else None
        if not isinstance(annotation, dict):
            report.problems.append(Problem(place, f"an annotation is a {type(annotation).__name__}, expected a dict"))
        elif not isinstance(name, str):
            report.problems.append(Problem(place, "no sample name: 'frame_dir' is missing" if name is None else
                                           f"'frame_dir' is a {type(name).__name__}, expected the sample name"))
        elif name in named:
            report.problems.append(Problem(place, f"a second annotation of {name}; the first was used"))
        else:
            named[name] = annotation
    return named


def _annotation_sample(annotation: dict, *, num_classes: int) -> tuple[np.ndarray, SampleMeta]:
    """The stored frames and the metadata of one annotation; one of UNUSABLE says why there are none."""
    name = annotation["frame_dir"]
    if "label" not in annotation:
        raise BadSample("no 'label'")
    label = annotation["label"]
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        raise BadSample(f"label {label!r} is not a class index (0..{num_classes - 1})")
    if not 0 <= label < num_classes:
        raise BadSample(f"label {label} outside 0..{num_classes - 1}")
    if "keypoint" not in annotation:
        raise BadSample("no 'keypoint'")
    try:
        keypoint = np.asarray(annotation["keypoint"])
    except ValueError:  # a ragged nest of lists
        raise BadSample("keypoint is not an array of numbers (its rows differ in length)") from None
    if keypoint.dtype.kind not in "iuf":  # not converted: "1.5" as text is no coordinate
        given = annotation["keypoint"]
        described = f"an array of {keypoint.dtype}" if isinstance(given, np.ndarray) else f"a {type(given).__name__}"
        raise BadSample(f"keypoint is {described}, not an array of numbers")
    if keypoint.ndim != 4 or keypoint.shape[2:] != FRAME_SHAPE[1:] or not 1 <= keypoint.shape[0] <= FRAME_SHAPE[0]:
        raise BadSample(f"keypoint has shape {keypoint.shape}, expected (1 or 2, frames, 25, 3)")
    sequence = np.zeros((keypoint.shape[1], *FRAME_SHAPE), dtype=np.float32)
    sequence[:, : keypoint.shape[0]] = store_coordinates(keypoint).transpose(1, 0, 2, 3)
    codes = parse_ntu_name(name) if NTU_NAME.fullmatch(name) else None
    meta = SampleMeta(name=name, label=int(label), **({} if codes is None else {
        "setup": codes.setup, "camera": codes.camera, "performer": codes.performer,
        "replication": codes.replication}))
    return stored_frames(sequence), meta
