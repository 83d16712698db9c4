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
  Read with an unpickler that accepts only numpy arrays and plain containers.

Either way the lengths are recovered from the zero padding (trailing all-zero frames dropped) and each
sequence is centred as our conversion centres it (hacm.data.normalise; a no-op on CTR-GCN's frames).
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
from hacm.data.storage import SampleMeta
from hacm.data.ntu import NTU_NAME, parse_ntu_name

FORMATS = (".npz", ".pkl")
_NPZ_BENCHMARK = re.compile(r"(ntu60|ntu120)_(xsub|xview|xset)", re.IGNORECASE)
_PKL_SPLITS = {"train": "train", "val": "test", "test": "test"}
_PICKLE_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                   ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                   ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict"),
                   ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer")}


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


def _add(stores: StoreSet, report: ConversionReport, *, benchmark: str, split: str, sequence: np.ndarray,
         meta: SampleMeta, path: Path) -> bool:
    """Whether the sample went into the store; else its problem is in the report."""
    sequence = trimmed(sequence)
    try:
        if len(sequence) == 0:
            raise EmptySequenceError("every frame is zero")
        stores.add(benchmark, split, normalise_sequence(sequence), meta)
        return True
    except EmptySequenceError as error:
        report.problems.append(Problem(sample_place(path, meta.name), str(error)))
        return False


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
    if fortran or dtype.hasobject:
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
        stores = StoreSet(out, [benchmark], {"dataset": dataset, "num_classes": num_classes,
                                              "imported_from": path.name, "format": "npz (MAMP / CTR-GCN)"})
        try:
            for split in ("train", "test"):
                labels = _npz_labels(archive, f"y_{split}", path, num_classes)
                shape, rows = _npy_rows(archive, f"x_{split}.npy", path)
                if len(shape) != 3 or shape[2] != int(np.prod(FRAME_SHAPE)) or shape[0] != len(labels):
                    raise ConversionError(f"{path}: x_{split} has shape {shape}; expected ({len(labels)}, frames, "
                                          f"{int(np.prod(FRAME_SHAPE))}) to go with y_{split}")
                report.files_found += shape[0]
                for index, row in enumerate(rows):
                    sequence = row.reshape(shape[1], *FRAME_SHAPE).astype(np.float32)
                    meta = SampleMeta(name=f"{split}-{index:06d}", label=int(labels[index]))
                    report.files_converted += _add(stores, report, benchmark=benchmark, split=split,
                                                   sequence=sequence, meta=meta, path=path)
            stores.close(report)
        except BaseException:
            stores.abort()
            raise


def _npz_labels(archive: zipfile.ZipFile, name: str, path: Path, num_classes: int) -> np.ndarray:
    with archive.open(f"{name}.npy") as stream:
        labels = np.lib.format.read_array(io.BytesIO(stream.read()), allow_pickle=False)
    if labels.ndim == 2:  # one-hot
        labels = labels.argmax(axis=1)
    labels = labels.astype(np.int64)
    if labels.ndim != 1 or (len(labels) and not 0 <= labels.min() <= labels.max() < num_classes):
        raise ConversionError(f"{path}: {name} must hold classes 0..{num_classes - 1} (indices or one-hot)")
    return labels


# ---------------------------------------------------------------------------------------------- .pkl


class _ArraysOnly(pickle.Unpickler):
    """Numpy arrays and plain containers only: a pickle naming anything else is refused, not run."""

    def find_class(self, module: str, name: str):
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
    try:
        with open(path, "rb") as stream:
            document = _ArraysOnly(stream).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise ConversionError(f"{path}: not a pyskl annotation file ({error})") from None
    if not isinstance(document, dict) or not {"split", "annotations"} <= set(document):
        raise ConversionError(f"{path}: expected a dict with 'split' and 'annotations'")
    parts = {}  # benchmark -> {name: our split}
    for key, names in document["split"].items():
        protocol, _, part = str(key).partition("_")
        benchmark = f"{dataset}-{protocol}"
        if benchmark in BENCHMARKS and part in _PKL_SPLITS:
            parts.setdefault(benchmark, {}).update({str(name): _PKL_SPLITS[part] for name in names})
    if not parts:
        raise ConversionError(f"{path}: its split lists ({', '.join(map(str, document['split']))}) name no benchmark "
                              f"of {dataset}")
    num_classes = DATASETS[dataset].num_classes
    stores = StoreSet(out, list(parts), {"dataset": dataset, "num_classes": num_classes, "imported_from": path.name,
                                          "format": "pkl (pyskl)"})
    try:
        annotations = {str(a.get("frame_dir")): a for a in document["annotations"] if isinstance(a, dict)}
        report.files_found = len(annotations)
        converted = set()  # a sample goes into both benchmarks of its dataset: counted once
        for benchmark, membership in parts.items():
            for name, split in membership.items():
                if name not in annotations:
                    report.problems.append(Problem(sample_place(path, name),
                                                   f"in the {benchmark} split lists, not annotated"))
                elif _add_annotation(stores, report, annotations[name], benchmark=benchmark, split=split,
                                     num_classes=num_classes, path=path):
                    converted.add(name)
        report.files_converted = len(converted)
        stores.close(report)
    except BaseException:
        stores.abort()
        raise


def _add_annotation(stores: StoreSet, report: ConversionReport, annotation: dict, *, benchmark: str, split: str,
                    num_classes: int, path: Path) -> bool:
    name = str(annotation["frame_dir"])
    keypoint = np.asarray(annotation.get("keypoint"), dtype=np.float32)
    label = int(annotation.get("label", -1))
    if keypoint.ndim != 4 or keypoint.shape[2:] != FRAME_SHAPE[1:] or not 1 <= keypoint.shape[0] <= FRAME_SHAPE[0]:
        report.problems.append(Problem(sample_place(path, name), f"keypoint has shape {keypoint.shape}, expected "
                                                                 f"(1 or 2, frames, 25, 3)"))
        return False
    if not 0 <= label < num_classes:
        report.problems.append(Problem(sample_place(path, name), f"label {label} outside 0..{num_classes - 1}"))
        return False
    sequence = np.zeros((keypoint.shape[1], *FRAME_SHAPE), dtype=np.float32)
    sequence[:, : keypoint.shape[0]] = keypoint.transpose(1, 0, 2, 3)
    codes = parse_ntu_name(name) if NTU_NAME.fullmatch(name) else None
    meta = SampleMeta(name=name, label=label, **({} if codes is None else {
        "setup": codes.setup, "camera": codes.camera, "performer": codes.performer,
        "replication": codes.replication}))
    return _add(stores, report, benchmark=benchmark, split=split, sequence=sequence, meta=meta, path=path)
