"""Translation normalisation (docs/method.md §1.3): the spine middle of actor 1 in its first frame is the origin."""

from __future__ import annotations

import numpy as np

from hacm.data.kinect import CENTRE_JOINT
from hacm.data.raw import store_coordinates


class EmptySequenceError(ValueError):
    """A sequence in which the first actor never appears."""


def normalise_sequence(sequence: np.ndarray) -> np.ndarray:
    """Subtract the origin from both actors, keeping exact zeros where an actor is absent.

    sequence: (frames, 2, 25, 3); returns a new float32 array of the same shape. Every way data comes in
    (raw readers, imported files) passes here, so the stores' finiteness rule is applied here too:
    SkeletonFormatError(NON_FINITE) for a value that is not finite in float32, before or after the shift.
    """
    sequence = store_coordinates(sequence)
    absent = ~sequence.reshape(*sequence.shape[:2], -1).any(axis=2)  # (frames, actors)
    first_frames = np.flatnonzero(~absent[:, 0])
    if len(first_frames) == 0:
        raise EmptySequenceError("the first actor is absent from every frame")
    origin = sequence[first_frames[0], 0, CENTRE_JOINT].copy()
    with np.errstate(over="ignore", invalid="ignore"):  # 3e38 - (-3e38) is inf in float32: refused below
        normalised = sequence - origin
    normalised[absent] = 0.0
    return store_coordinates(normalised)
