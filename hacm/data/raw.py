"""Types shared by the raw readers and the pre-processing: bodies as read, and the error for bad files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class SkeletonFormatError(ValueError):
    """A raw skeleton file that cannot be used; the message says why."""


NON_FINITE = "NaN, infinite or out-of-range joint coordinate (beyond float32, the stores' dtype)"


def store_coordinates(values) -> np.ndarray:
    """`values` as float32, the stores' dtype, or SkeletonFormatError(NON_FINITE). Checked after the cast:
    1e39 is finite in float64 and inf in float32. The cast's overflow warning is silenced because the
    error says it, once, with the sample's name."""
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.asarray(values, dtype=np.float32)
    if not np.isfinite(values).all():
        raise SkeletonFormatError(NON_FINITE)
    return values


@dataclass(frozen=True)
class RawBody:
    """One tracked body id over the frames in which it appears."""

    body_id: str
    frames: np.ndarray  # int64 (n,): indices among the frames that have at least one body
    joints: np.ndarray  # float32 (n, 25, 3)


@dataclass(frozen=True)
class RawSkeleton:
    """The content of one `.skeleton` file: every body id, in order of first appearance."""

    name: str
    num_frames: int  # as declared in the header
    num_valid_frames: int  # frames with at least one body
    bodies: dict[str, RawBody]
