"""The sensor: a scene seen from a camera (placed and tilted at random), with Kinect's smoothed tracking noise."""

from __future__ import annotations

import numpy as np

from hacm.data.kinect import L_FOOT, L_HAND_TIP, L_THUMB, NUM_JOINTS, R_FOOT, R_HAND_TIP, R_THUMB
from hacm.data.synthetic.geometry import rotation

_YAW_JITTER_DEG = 15.0  # about the view's yaw: NTU's cameras stay within +-45 degrees
JOINT_NOISE_M = 0.002
_EXTREMITY_NOISE_M = 0.005  # hand tips, thumbs and feet are tracked worse
_NOISE_SMOOTHING_FRAMES = 3.0  # std of the Gaussian smoothing, in frames
_CAMERA_PITCH_DEG = 4.0
_SCENE_X_M, _SCENE_Z_M, _SCENE_Y_M = (-0.3, 0.3), (2.7, 3.6), (-0.05, 0.25)  # spine base position
_PAIR_EXTRA_DEPTH_M = 0.4  # two people stand a little further from the camera


def _camera_view(scene: np.ndarray, *, yaw: float, pitch: float, offset: np.ndarray) -> np.ndarray:
    """Scene coordinates (..., 3) -> camera coordinates: turn by yaw, move away, tilt by pitch."""
    yaw_rotation = rotation(1, np.float64(yaw))
    pitch_rotation = rotation(0, np.float64(pitch))
    return (scene @ yaw_rotation.T + offset) @ pitch_rotation.T


def _temporally_smooth(noise: np.ndarray, width: float) -> np.ndarray:
    """Gaussian smoothing over time (std `width` frames, edges padded), rescaled to keep the per-frame spread.

    A Gaussian (not a box) kernel, so that frame-to-frame differences of the noise are smooth too.
    """
    radius = int(3 * width)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / width) ** 2)
    kernel /= np.sqrt((kernel**2).sum())
    padded = np.concatenate([np.repeat(noise[:1], radius, 0), noise, np.repeat(noise[-1:], radius, 0)])
    return sum(weight * padded[k : k + len(noise)] for k, weight in enumerate(kernel))


def add_joint_noise(joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Kinect's tracker smooths its output, so its jitter drifts over a few frames rather than being
    # independent per frame; frame-to-frame motion then carries the action, not the sensor noise.
    sigma = np.full(NUM_JOINTS, JOINT_NOISE_M)
    sigma[[L_HAND_TIP, L_THUMB, R_HAND_TIP, R_THUMB, L_FOOT, R_FOOT]] = _EXTREMITY_NOISE_M
    noise = rng.normal(size=joints.shape)
    if joints.ndim == 3 and len(joints) > 1:
        noise = _temporally_smooth(noise, _NOISE_SMOOTHING_FRAMES)
    return joints + noise * sigma[:, None]


def camera_frames(scenes: list[np.ndarray], *, yaw_deg: float, two_people: bool, rng) -> list[np.ndarray]:
    """Place the scene in front of a camera at a random position and tilt; add sensor noise."""
    yaw = np.deg2rad(yaw_deg + rng.uniform(-_YAW_JITTER_DEG, _YAW_JITTER_DEG))
    pitch = np.deg2rad(rng.uniform(-_CAMERA_PITCH_DEG, _CAMERA_PITCH_DEG))
    offset = np.array([
        rng.uniform(*_SCENE_X_M),
        rng.uniform(*_SCENE_Y_M),
        rng.uniform(*_SCENE_Z_M) + (_PAIR_EXTRA_DEPTH_M if two_people else 0.0),
    ])
    return [add_joint_noise(_camera_view(scene, yaw=yaw, pitch=pitch, offset=offset), rng) for scene in scenes]
