"""Small geometry of the synthetic generator: rotations about a coordinate axis and a smooth step."""

from __future__ import annotations

import numpy as np


def rotation(axis: int, angles: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotation matrices about the x (0), y (1) or z (2) axis, right-handed."""
    angles = np.asarray(angles, dtype=np.float64)
    cos, sin = np.cos(angles), np.sin(angles)
    out = np.zeros(angles.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out[..., axis, axis] = 1.0
    out[..., i, i] = cos
    out[..., j, j] = cos
    out[..., i, j] = -sin
    out[..., j, i] = sin
    return out


def rotate(rotations: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Rotate one vector (3,) or per-frame vectors (T, 3) by per-frame rotations (T, 3, 3)."""
    if vector.ndim == 1:
        return rotations @ vector
    return np.einsum("tij,tj->ti", rotations, vector)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)
