"""Semi-supervised training subsets: a share of every class, at least one sample each, from a recorded seed."""

from __future__ import annotations

import hashlib

import numpy as np


def subset_seed(seed: int, fraction: float, draw: int) -> int:
    """The seed of one draw, derived from the run seed, the fraction and the draw number."""
    text = f"{seed}:{fraction:.6f}:{draw}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


def per_class_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices: round(fraction x n_c) samples (at least 1) of every class c, chosen at random."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = max(1, int(round(fraction * len(members))))
        chosen.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def subset_digest(indices: np.ndarray) -> str:
    """A short fingerprint of a subset, recorded in the metrics so draws can be compared."""
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]
