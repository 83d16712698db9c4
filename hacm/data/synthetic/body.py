"""The stick figure: its proportions and degrees of freedom, its joints from the DOFs, and its place in the scene."""

from __future__ import annotations

import numpy as np

from hacm.data.kinect import (
    HEAD,
    L_ANKLE,
    L_ELBOW,
    L_FOOT,
    L_HAND,
    L_HAND_TIP,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_THUMB,
    L_WRIST,
    NECK,
    NUM_JOINTS,
    R_ANKLE,
    R_ELBOW,
    R_FOOT,
    R_HAND,
    R_HAND_TIP,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_THUMB,
    R_WRIST,
    SPINE_MID,
    SPINE_SHOULDER,
)
from hacm.data.synthetic.geometry import rotate, rotation

_ARM_JOINTS = {  # side sign (+1 right, -1 left) -> shoulder, elbow, wrist, hand, hand tip, thumb
    +1: (R_SHOULDER, R_ELBOW, R_WRIST, R_HAND, R_HAND_TIP, R_THUMB),
    -1: (L_SHOULDER, L_ELBOW, L_WRIST, L_HAND, L_HAND_TIP, L_THUMB),
}
_LEG_JOINTS = {+1: (R_HIP, R_KNEE, R_ANKLE, R_FOOT), -1: (L_HIP, L_KNEE, L_ANKLE, L_FOOT)}

# Body frame of a person: x to the person's right, y up, z backwards (the person faces -z). Facing the
# camera, the person's left side then has the smaller camera x, as in the real files. Lengths in metres
# for a subject of scale 1 (about 1.75 m tall).
_TRUNK_REST = {
    SPINE_MID: (0.0, 0.26, 0.0),
    SPINE_SHOULDER: (0.0, 0.50, 0.0),
    NECK: (0.0, 0.57, 0.0),
    HEAD: (0.0, 0.70, 0.0),
}
_SHOULDER_HALF_WIDTH, _SHOULDER_HEIGHT = 0.18, 0.47
_UPPER_ARM, _FOREARM, _HAND, _HAND_TIP, _THUMB = 0.28, 0.25, 0.08, 0.15, 0.06
_THUMB_DIRECTION = np.array([0.0, -0.6, -0.7])  # in the forearm frame: down the hand and forwards
_HIP_HALF_WIDTH, _HIP_HEIGHT = 0.08, -0.03
_THIGH, _SHIN = 0.42, 0.40
_FOOT_OFFSET = np.array([0.0, -0.06, -0.11])  # ankle -> foot, in the shin frame
_DOWN = np.array([0.0, -1.0, 0.0])

# Degrees of freedom of a person, as offsets from the rest pose (radians, metres). Angles: flex raises
# the arm (or leg) forwards, abd sideways, elbow bends the forearm forwards, bend tilts the trunk
# forwards; step moves the person forwards.
DOF_NAMES = (
    "bend", "step",
    "r_flex", "r_abd", "r_elbow", "l_flex", "l_abd", "l_elbow",
    "r_hip", "r_knee", "l_hip", "l_knee",
)

# People in the scene: their sizes, and how two people stand towards each other.
SUBJECT_SCALE = (0.86, 1.12)  # per performer
PAIR_SEPARATION_M = (1.35, 1.55)  # distance between two people at rest
QUARTER_TURN = np.pi / 2  # heading that makes a person (facing -z) face +x (negative) or -x (positive)


def _arm(joints, side: int, dofs, trunk: np.ndarray, scale: float) -> None:
    prefix = "r" if side > 0 else "l"
    shoulder_j, elbow_j, wrist_j, hand_j, tip_j, thumb_j = _ARM_JOINTS[side]
    flex, abd = dofs[f"{prefix}_flex"], dofs[f"{prefix}_abd"]
    upper = trunk @ rotation(2, side * abd) @ rotation(0, flex)
    fore = trunk @ rotation(2, side * abd) @ rotation(0, flex + dofs[f"{prefix}_elbow"])
    shoulder = rotate(trunk, np.array([side * _SHOULDER_HALF_WIDTH, _SHOULDER_HEIGHT, 0.0]) * scale)
    elbow = shoulder + rotate(upper, _DOWN * _UPPER_ARM * scale)
    wrist = elbow + rotate(fore, _DOWN * _FOREARM * scale)
    thumb_direction = _THUMB_DIRECTION * np.array([side, 1.0, 1.0]) / np.linalg.norm(_THUMB_DIRECTION)
    joints[:, shoulder_j] = shoulder
    joints[:, elbow_j] = elbow
    joints[:, wrist_j] = wrist
    joints[:, hand_j] = wrist + rotate(fore, _DOWN * _HAND * scale)
    joints[:, tip_j] = wrist + rotate(fore, _DOWN * _HAND_TIP * scale)
    joints[:, thumb_j] = wrist + rotate(fore, thumb_direction * _THUMB * scale)


def _leg(joints, side: int, dofs, scale: float) -> None:
    prefix = "r" if side > 0 else "l"
    hip_j, knee_j, ankle_j, foot_j = _LEG_JOINTS[side]
    hip_flex = dofs[f"{prefix}_hip"]
    thigh = rotation(0, hip_flex)
    shin = rotation(0, hip_flex - dofs[f"{prefix}_knee"])  # the knee bends backwards
    hip = np.array([side * _HIP_HALF_WIDTH, _HIP_HEIGHT, 0.0]) * scale
    knee = hip + rotate(thigh, _DOWN * _THIGH * scale)
    ankle = knee + rotate(shin, _DOWN * _SHIN * scale)
    joints[:, hip_j] = hip
    joints[:, knee_j] = knee
    joints[:, ankle_j] = ankle
    joints[:, foot_j] = ankle + rotate(shin, _FOOT_OFFSET * scale)


def skeleton_from_dofs(dofs: dict[str, np.ndarray], *, scale: float) -> np.ndarray:
    """(T, 25, 3) joints in the person's body frame, spine base at the origin, feet on the floor."""
    num_frames = len(dofs["bend"])
    joints = np.zeros((num_frames, NUM_JOINTS, 3))
    trunk = rotation(0, -dofs["bend"])  # bending forwards tilts the trunk towards -z
    for joint, offset in _TRUNK_REST.items():
        joints[:, joint] = rotate(trunk, np.asarray(offset) * scale)
    for side in (+1, -1):
        _arm(joints, side, dofs, trunk, scale)
        _leg(joints, side, dofs, scale)
    # Whichever foot is lower stays on the floor (nothing changes while one leg is straight).
    rest_ankle_height = _HIP_HEIGHT * scale - (_THIGH + _SHIN) * scale
    lift = rest_ankle_height - np.minimum(joints[:, L_ANKLE, 1], joints[:, R_ANKLE, 1])
    joints[:, :, 1] += lift[:, None]
    joints[:, :, 2] -= dofs["step"][:, None]  # forwards is -z
    return joints


def place(joints: np.ndarray, *, heading: np.ndarray | float, position: np.ndarray) -> np.ndarray:
    """Turn a person (about the vertical axis) and put the spine base at `position` (T, 3) or (3,)."""
    heading = np.broadcast_to(np.asarray(heading, dtype=np.float64), joints.shape[:1])
    return np.einsum("tij,tvj->tvi", rotation(1, heading), joints) + np.asarray(position)[..., None, :]
