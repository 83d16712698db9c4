"""Reader for PKU-MMD phase I and II (DESIGN §1.5): one long video per file, one sample per labelled interval.

A skeleton file has one line per frame of 150 numbers (2 bodies x 25 joints x xyz); a label file has
lines `label,start,end,confidence` with 1-based labels. Frame indices in label files are taken as
0-based and inclusive; an interval is cut to its first MAX_PKU_FRAMES frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hacm.data.normalise import normalise_sequence
from hacm.benchmarks import DATASETS
from hacm.data.kinect import NUM_BODIES, NUM_JOINTS
from hacm.data.raw import NON_FINITE, SkeletonFormatError

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


@dataclass(frozen=True)
class PkuSample:
    name: str  # <video>_<interval number, 1-based>
    video: str
    label: int  # 0-based
    frames: np.ndarray  # float32 (n, 2, 25, 3), normalised


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
    values = values.astype(np.float32)  # checked in the dtype of the store: 1e39 is inf in float32
    if not np.isfinite(values).all():
        raise SkeletonFormatError(NON_FINITE)
    return values.reshape(len(lines), NUM_BODIES, NUM_JOINTS, 3)


def read_pku_labels(path: str | Path) -> list[PkuInterval]:
    """The labelled intervals of a PKU-MMD label file."""
    intervals = []
    lines = Path(path).read_text(encoding="utf-8-sig", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(",")]
        try:
            label, start, end, confidence = (int(float(part)) for part in parts[:4])
        except ValueError:
            raise SkeletonFormatError(f"label line {number} is not `label,start,end,confidence`") from None
        if len(parts) < 4 or not 1 <= label <= PKU_NUM_CLASSES or end < start or start < 0:
            raise SkeletonFormatError(f"label line {number} is invalid: {line.strip()!r}")
        intervals.append(PkuInterval(label, start, end, confidence))
    if not intervals:
        raise SkeletonFormatError("label file lists no interval")
    return intervals


def _first_actor_present(sequence: np.ndarray) -> np.ndarray:
    # Kinect's body slots are arbitrary: when only the second slot holds a body, make it actor 1.
    if not sequence[:, 0].any() and sequence[:, 1].any():
        sequence = sequence[:, ::-1].copy()
    return sequence


def cut_pku_samples(
    video: str, skeleton: np.ndarray, intervals: list[PkuInterval]
) -> tuple[list[PkuSample], list[str]]:
    """One normalised sample per labelled interval, and a problem line for each interval dropped."""
    samples, problems = [], []
    for number, interval in enumerate(intervals, 1):
        name = f"{video}_{number:03d}"
        if interval.start >= len(skeleton):
            problems.append(f"{name}: interval {interval.start}-{interval.end} starts after the "
                            f"{len(skeleton)} frames of the video")
            continue
        end = min(interval.end + 1, len(skeleton), interval.start + MAX_PKU_FRAMES)
        sequence = _first_actor_present(skeleton[interval.start : end])
        if not sequence.any():
            problems.append(f"{name}: all joints are zero in frames {interval.start}-{interval.end}")
            continue
        frames = normalise_sequence(sequence)
        samples.append(PkuSample(name=name, video=video, label=interval.label - 1, frames=frames))
    return samples, problems


def load_pku_video(skeleton_path: str | Path, label_path: str | Path) -> tuple[list[PkuSample], list[str]]:
    """All samples of one video, and the problems found in it."""
    video = Path(skeleton_path).stem
    return cut_pku_samples(video, read_pku_skeleton(skeleton_path), read_pku_labels(label_path))
