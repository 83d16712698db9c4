"""Denoising and actor selection: the standard NTU pre-processing used by MAMP and HA-CM (docs/method.md §1.2).

Kinect sometimes tracks furniture or a passer-by as an extra body, and re-identifies one person
under a new id. These rules keep at most two actors per sample: drop short-lived and flat bodies,
rank the rest by motion, and chain bodies whose frame intervals do not overlap into one actor track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hacm.data.kinect import NUM_BODIES, NUM_JOINTS
from hacm.data.raw import RawBody, RawSkeleton, SkeletonFormatError

MAX_NOISE_LENGTH = 11  # a body seen in this many frames or fewer is noise
SPREAD_RATIO = 0.8  # a frame is flat (noisy) when x-range > 0.8 * y-range
MAX_NOISY_FRAME_RATIO = 0.69754  # a body with this share of flat frames is noise


@dataclass
class _Candidate:
    body: RawBody
    motion: float


def body_motion(joints: np.ndarray) -> float:
    """Sum over x, y, z of the variance of all joint coordinates of a body."""
    return float(np.var(joints.reshape(-1, 3), axis=0, dtype=np.float64).sum())


def flat_frames(joints: np.ndarray) -> np.ndarray:
    """Boolean (n,): frames whose x-range over the joints exceeds SPREAD_RATIO times the y-range."""
    spread = joints.max(axis=1) - joints.min(axis=1)
    return spread[:, 0] > SPREAD_RATIO * spread[:, 1]


def denoise_bodies(bodies: list[RawBody]) -> list[_Candidate]:
    """Length and spread denoising, then the remaining bodies ordered by motion, largest first."""
    candidates = [_Candidate(body, body_motion(body.joints)) for body in bodies]
    long_enough = [c for c in candidates if len(c.body.frames) > MAX_NOISE_LENGTH]
    # The reference scripts crash when every body is short-lived; keeping them all loses no sample.
    candidates = long_enough or candidates
    if len(candidates) > 1:
        for candidate in list(candidates):
            if len(candidates) == 1:
                break
            flat = flat_frames(candidate.body.joints)
            if not flat.any():
                continue
            if flat.mean() >= MAX_NOISY_FRAME_RATIO:
                candidates.remove(candidate)
            else:
                clean_motion = body_motion(candidate.body.joints[~flat])
                candidate.motion = min(candidate.motion, clean_motion)
    return sorted(candidates, key=lambda c: c.motion, reverse=True)


def _overlaps(interval: tuple[int, int], start: int, end: int) -> bool:
    # Intervals that share only an end frame count as disjoint, as in the reference scripts.
    return min(interval[1], end) - max(interval[0], start) > 0


def assign_actors(candidates: list[_Candidate], num_frames: int) -> np.ndarray:
    """Chain the ranked bodies into two actor tracks: float32 (num_frames, 2, 25, 3)."""
    sequence = np.zeros((num_frames, NUM_BODIES, NUM_JOINTS, 3), np.float32)
    first = candidates[0].body
    sequence[first.frames, 0] = first.joints
    intervals = [(int(first.frames[0]), int(first.frames[-1])), (0, 0)]
    for candidate in candidates[1:]:
        body = candidate.body
        start, end = int(body.frames[0]), int(body.frames[-1])
        for actor, interval in enumerate(intervals):
            if not _overlaps(interval, start, end):
                sequence[body.frames, actor] = body.joints
                intervals[actor] = (min(interval[0], start), max(interval[1], end))
                break
    return sequence


def select_actors(skeleton: RawSkeleton) -> np.ndarray:
    """The two main actors of a file, float32 (frames, 2, 25, 3), frames without any body dropped."""
    bodies = list(skeleton.bodies.values())
    if not bodies:
        raise SkeletonFormatError("no body in any frame")
    if len(bodies) == 1:
        sequence = np.zeros((skeleton.num_valid_frames, NUM_BODIES, NUM_JOINTS, 3), np.float32)
        sequence[bodies[0].frames, 0] = bodies[0].joints
        return sequence
    sequence = assign_actors(denoise_bodies(bodies), skeleton.num_valid_frames)
    present = sequence.reshape(len(sequence), -1).any(axis=1)
    return sequence[present]
