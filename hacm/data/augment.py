"""Batched crop-resize, rotation and input kind (docs/method.md §1.7), as tensor operations that run on CPU or GPU alike.

Randomness is given to these functions as uniforms in [0, 1) rather than drawn inside them, so a
sample's augmentation depends only on (seed, epoch, sample index): the same whatever the batch it
falls in, the worker that builds it or the device that runs it.
"""

from __future__ import annotations

import numpy as np
import torch

MIN_CROP_FRAMES = 64
TRAIN_CROP_RATIO = (0.5, 1.0)
TEST_CROP_RATIO = 0.95
MAX_ROTATION = 0.3  # radians, about each axis
# What a clip holds: joint coordinates, or their frame-to-frame velocity (the release's feeder option `vel`).
COORDINATES, VELOCITY = "coordinates", "velocity"

# Streams of per-sample uniforms: crop ratio, crop start, three rotation angles.
NUM_UNIFORMS = 5

_MASK64 = (1 << 64) - 1


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays: a cheap, well-mixed counter-based hash."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def sample_uniforms(seed: int, epoch: int, indices: np.ndarray, count: int = NUM_UNIFORMS) -> np.ndarray:
    """float64 (len(indices), count) uniforms in [0, 1), a pure function of (seed, epoch, index)."""
    key = _splitmix64(np.array([(seed * 1_000_003 + epoch) & _MASK64], dtype=np.uint64))[0]
    counters = np.asarray(indices, dtype=np.uint64)[:, None] * np.uint64(count) + np.arange(
        count, dtype=np.uint64
    )
    with np.errstate(over="ignore"):
        bits = _splitmix64(counters ^ key)
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def crop_windows(
    valid_lengths: torch.Tensor, uniforms: torch.Tensor | None, *, train: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and length of each sample's crop within its valid frames (int64 tensors).

    Train: ratio p ~ U[0.5, 1], length = clip(floor(valid * p), 64, valid), random start.
    Test: centre crop with p = 0.95 (uniforms unused).
    """
    valid = valid_lengths.to(torch.int64)
    if not train:
        bias = ((1.0 - TEST_CROP_RATIO) * valid.double() / 2).floor().to(torch.int64)
        return bias, valid - 2 * bias
    low, high = TRAIN_CROP_RATIO
    ratio = low + (high - low) * uniforms[:, 0].double()
    length = (valid.double() * ratio).floor().to(torch.int64)
    length = torch.minimum(length.clamp(min=MIN_CROP_FRAMES), valid)
    start = (uniforms[:, 1].double() * (valid - length + 1).double()).floor().to(torch.int64)
    return torch.minimum(start, valid - length), length


def resize_positions(
    starts: torch.Tensor, lengths: torch.Tensor, frames: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source frames and weights that resize each crop to `frames` by linear interpolation.

    Same sampling as `F.interpolate(..., mode="linear", align_corners=False)`: output frame t reads
    position (t + 0.5) * length / frames - 0.5 of the crop, clamped at 0. Returns (B, frames) tensors:
    the lower and upper source frame (relative to the sample's first stored frame) and the weight of
    the upper one.
    """
    t = torch.arange(frames, device=starts.device, dtype=torch.float64)
    scale = lengths.double()[:, None] / frames
    source = ((t[None, :] + 0.5) * scale - 0.5).clamp(min=0.0)
    lower = source.floor().to(torch.int64)
    lower = torch.minimum(lower, (lengths - 1)[:, None])
    upper = torch.minimum(lower + 1, (lengths - 1)[:, None])
    weight = (source - lower.double()).clamp(0.0, 1.0).float()
    return starts[:, None] + lower, starts[:, None] + upper, weight


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) rotations Rz @ Ry @ Rx from (B, 3) angles about x, y, z (MAMP's convention)."""
    cos, sin = angles.cos(), angles.sin()
    zero, one = torch.zeros_like(cos[:, 0]), torch.ones_like(cos[:, 0])
    cx, cy, cz = cos.unbind(1)
    sx, sy, sz = sin.unbind(1)
    rx = torch.stack([one, zero, zero, zero, cx, sx, zero, -sx, cx], 1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, -sy, zero, one, zero, sy, zero, cy], 1).view(-1, 3, 3)
    rz = torch.stack([cz, sz, zero, -sz, cz, zero, zero, zero, one], 1).view(-1, 3, 3)
    return rz @ ry @ rx


def random_rotation_angles(uniforms: torch.Tensor, max_angle: float = MAX_ROTATION) -> torch.Tensor:
    """(B, 3) angles uniform in ±max_angle from three uniform columns."""
    return (uniforms * 2.0 - 1.0) * max_angle


def gather_frames(table, rows: torch.Tensor) -> torch.Tensor:
    """Rows of a frame table, (B, T, 2, 25, 3) float32: a torch tensor on any device, or a (mapped) numpy array."""
    if isinstance(table, torch.Tensor):
        return table[rows.to(table.device)]
    flat = rows.reshape(-1).cpu().numpy()
    return torch.from_numpy(np.asarray(table[flat], dtype=np.float32)).view(*rows.shape, *table.shape[1:])


def augment_batch(
    table,
    offsets: torch.Tensor,
    valid_lengths: torch.Tensor,
    uniforms: torch.Tensor | None,
    *,
    frames: int,
    train: bool,
    rotation: float = MAX_ROTATION,
    input: str = COORDINATES,
) -> torch.Tensor:
    """Crop, resize, (train) rotate and, for `input` velocity, difference a batch: (B, C=3, T, V=25, M=2) float32.

    table: the frame table (rows = frames, 2 x 25 x 3), on the device where the work should run;
    offsets / valid_lengths: per-sample first row and valid-frame count; uniforms: (B, NUM_UNIFORMS).
    """
    if input not in (COORDINATES, VELOCITY):
        raise ValueError(f"input must be {COORDINATES!r} or {VELOCITY!r} (got {input!r})")
    device = table.device if isinstance(table, torch.Tensor) else torch.device("cpu")
    offsets, valid_lengths = offsets.to(device), valid_lengths.to(device)
    if uniforms is not None:
        uniforms = uniforms.to(device)
    starts, lengths = crop_windows(valid_lengths, uniforms, train=train)
    lower, upper, weight = resize_positions(starts, lengths, frames)
    base = offsets[:, None]
    x_lower = gather_frames(table, base + lower).to(device)
    x_upper = gather_frames(table, base + upper).to(device)
    x = torch.lerp(x_lower, x_upper, weight[:, :, None, None, None])  # (B, T, M, V, C)
    if train and rotation > 0:
        rotations = rotation_matrices(random_rotation_angles(uniforms[:, 2:5].float(), rotation))
        # Points are column vectors: x' = R x for every frame, body and joint.
        x = torch.einsum("bij,btmvj->btmvi", rotations, x)
    x = x.permute(0, 4, 1, 3, 2).contiguous()  # (B, C, T, V, M)
    return frame_velocity(x) if input == VELOCITY else x


def frame_velocity(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, V, M) clips -> v_t = x_{t+1} - x_t, v_{T-1} = 0, for every joint of every body.

    The release's `vel: True` (feeder/feeder_ntu.py l.97-99): taken on the clip as the model sees it, after
    the crop, the resize and the rotation, so it is the velocity at the clip's own frame rate. An absent
    body stays zero."""
    velocity = torch.zeros_like(x)
    velocity[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return velocity
