"""Reader for PKU-MMD phase I and II (docs/method.md §1.5): one long video per file, one sample per labelled interval.

A skeleton file has one line per frame of 150 numbers (2 bodies x 25 joints x xyz); a label file has
lines `label,start,end,confidence` with 1-based labels. Frame indices in label files are taken as
0-based and inclusive; an interval is cut to its first MAX_PKU_FRAMES frames, and at the video's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hacm.data.normalise import normalise_sequence
from hacm.benchmarks import DATASETS
from hacm.data.kinect import NUM_BODIES, NUM_JOINTS
from hacm.data.raw import SkeletonFormatError, store_coordinates

PKU_VALUES_PER_FRAME = NUM_BODIES * NUM_JOINTS * 3
MAX_PKU_FRAMES = 300
PKU_NUM_CLASSES = DATASETS["pku1"].num_classes  # labels run within 1..51 in both phases (the registry)


@dataclass(frozen=True)
class PkuInterval:
    """One labelled action in a video."""

    label: int  # 1-based, as in the file
    start: int
    end: int
    confidence: int
    number: int  # among the label file's non-empty lines, 1-based: names the sample (<video>_<number>)
    line: int  # in the label file, 1-based: named in what is reported about the interval


@dataclass(frozen=True)
class PkuSample:
    name: str  # <video>_<interval number, 1-based>
    video: str
    label: int  # 0-based
    frames: np.ndarray  # float32 (n, 2, 25, 3), normalised


@dataclass(frozen=True)
class PkuVideo:
    """The samples of one video, and what was found in its two files, each as (file, what)."""

    samples: list[PkuSample]
    problems: list[tuple[str, str]]  # a label line refused, an interval dropped, a file unusable
    notices: list[tuple[str, str]]  # an interval kept but cut at the end of the video


def read_pku_skeleton(path: str | Path) -> np.ndarray:
    """A PKU-MMD skeleton file as float32 (frames, 2, 25, 3), not yet normalised."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise SkeletonFormatError(f"unreadable: {error.strerror or error}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise SkeletonFormatError("empty file")
    widths = {len(line.split()) for line in lines}
    if widths != {PKU_VALUES_PER_FRAME}:
        bad = next(n for n, line in enumerate(lines, 1) if len(line.split()) != PKU_VALUES_PER_FRAME)
        raise SkeletonFormatError(
            f"line {bad} has {len(lines[bad - 1].split())} values, expected {PKU_VALUES_PER_FRAME}"
        )
    try:
        values = np.array(b" ".join(lines).split(), dtype=np.float64)
    except ValueError:
        raise SkeletonFormatError("non-numeric text in a frame line") from None
    return store_coordinates(values).reshape(len(lines), NUM_BODIES, NUM_JOINTS, 3)


def read_pku_labels(path: str | Path) -> tuple[list[PkuInterval], list[str]]:
    """The labelled intervals of a PKU-MMD label file, and one problem (`line N: why`) per line refused:
    a bad line costs its own interval only. SkeletonFormatError when the file is unreadable or empty."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    except OSError as error:
        raise SkeletonFormatError(f"unreadable: {error.strerror or error}") from None
    intervals, problems = [], []
    numbered = [(line_number, line) for line_number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not numbered:
        raise SkeletonFormatError("label file lists no interval")
    for number, (line_number, line) in enumerate(numbered, 1):
        try:
            label, start, end, confidence = _label_fields(line)
        except ValueError as why:
            problems.append(f"line {line_number}: {why}: {line.strip()!r}")
            continue
        intervals.append(PkuInterval(label, start, end, confidence, number=number, line=line_number))
    return intervals, problems


def _label_fields(line: str) -> tuple[int, int, int, int]:
    """`label,start,end,confidence` as four integers; ValueError saying what is wrong."""
    parts = [part.strip() for part in line.split(",")]
    if len(parts) < 4:
        raise ValueError(f"expected 4 comma-separated fields (label,start,end,confidence), found {len(parts)}")
    values = []
    for part in parts[:4]:
        try:
            value = float(part)
        except ValueError:
            value = float("nan")
        if not value.is_integer():  # nor are NaN and inf, which int() would refuse with a traceback
            raise ValueError(f"{part!r} is not a whole number")
        values.append(int(value))
    label, start, end, confidence = values
    if not 1 <= label <= PKU_NUM_CLASSES:
        raise ValueError(f"label {label} outside 1..{PKU_NUM_CLASSES}")
    if start < 0:
        raise ValueError(f"negative start frame {start}")
    if end < start:
        raise ValueError(f"end frame {end} before start frame {start}")
    return label, start, end, confidence


def _first_actor_present(sequence: np.ndarray) -> np.ndarray:
    # Kinect's body slots are arbitrary: when only the second slot holds a body, make it actor 1.
    if not sequence[:, 0].any() and sequence[:, 1].any():
        sequence = sequence[:, ::-1].copy()
    return sequence


def cut_pku_samples(
    video: str, skeleton: np.ndarray, intervals: list[PkuInterval], *, skeleton_file: str, label_file: str
) -> PkuVideo:
    """One normalised sample per labelled interval (docs/method.md §1.5: frames start..end, at most MAX_PKU_FRAMES).

    An interval that starts after the video is a problem of its label line; one that ends after it is
    kept, cut at the video's last frame, with a notice (no frame is invented; the file names are reported).
    """
    samples, problems, notices = [], [], []
    frames = len(skeleton)
    for interval in intervals:
        name = f"{video}_{interval.number:03d}"
        span = f"interval {interval.start}-{interval.end} ({name})"
        if interval.start >= frames:
            problems.append((label_file, f"line {interval.line}: {span} starts after the {frames} frames of "
                                         f"{skeleton_file} (frames 0-{frames - 1}); dropped"))
            continue
        end = min(interval.end + 1, frames, interval.start + MAX_PKU_FRAMES)
        if interval.end >= frames:
            notices.append((label_file, f"line {interval.line}: {span} ends after the {frames} frames of "
                                        f"{skeleton_file}; frames {interval.start}-{end - 1} kept"))
        sequence = _first_actor_present(skeleton[interval.start : end])
        if not sequence.any():
            problems.append((skeleton_file, f"{name}: all joints are zero in frames {interval.start}-{end - 1}"))
            continue
        try:
            normalised = normalise_sequence(sequence)
        except SkeletonFormatError as error:  # one interval's coordinates: the video's other intervals stay
            problems.append((skeleton_file, f"{name}: {error}"))
            continue
        samples.append(PkuSample(name=name, video=video, label=interval.label - 1, frames=normalised))
    return PkuVideo(samples=samples, problems=problems, notices=notices)


def load_pku_video(skeleton_path: str | Path, label_path: str | Path) -> PkuVideo:
    """All samples of one video, and what was found in it; each problem names the file it is in."""
    skeleton_file, label_file = str(skeleton_path), str(label_path)
    try:
        intervals, line_problems = read_pku_labels(label_path)
    except SkeletonFormatError as error:
        return PkuVideo(samples=[], problems=[(label_file, str(error))], notices=[])
    problems = [(label_file, problem) for problem in line_problems]
    try:
        skeleton = read_pku_skeleton(skeleton_path)
    except SkeletonFormatError as error:
        return PkuVideo(samples=[], problems=problems + [(skeleton_file, str(error))], notices=[])
    video = cut_pku_samples(Path(skeleton_path).stem, skeleton, intervals,
                            skeleton_file=skeleton_file, label_file=label_file)
    return PkuVideo(samples=video.samples, problems=problems + video.problems, notices=video.notices)
