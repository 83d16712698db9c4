"""Embedded synthetic dataset: NTU RGB+D `.skeleton` and PKU-MMD files written in the real formats.

The same readers serve real and synthetic data, so everything downstream of the raw files is
exercised. A kinematic stick figure (Kinect v2 joint order, metres, camera frame with y up and z the
depth) performs class-specific limb trajectories; nuisances are the camera yaw, position, subject size,
speed (frame count and a smooth time warp), joint noise, extra noisy bodies, empty frames and, for about
1 % of the NTU files, no skeleton at all (listed like the official missing-skeleton list).

The classes come in five groups of three. Within a group every class is built from the same motion
pieces, only their order in time (or the sense in which the hand draws its circles) differs, so each
joint angle takes the same values for the same share of the time in every class of the group: the
time-averaged pose cannot tell the classes of a group apart, the trajectory can. The classes of an
ordered group also differ in style: their pieces swell 0, 1 or 2 times on the way (the time-averaged
joint angles do not change, the local motion is not). The circles' sense is visible in any three
consecutive frames of the hand, and no crop or time warp of the sequence changes it (generator version 3
told its classes apart by the number of wave cycles instead, which no method learned). As in
the real datasets, the last group exists
only in NTU RGB+D 120: it is performed in the NTU-120 setups (S018, S019), by NTU-120 performers, who
also perform every NTU-60 class.

Every limb moves smoothly and without pause while a piece lasts (a raised-cosine bump, no plateau), and
the sensor noise is small beside the motion: masked motion is predictable from the visible tokens around
it, which is what the pretext task of MAMP and HA-CM needs to learn anything.

Randomness: every NTU performance (setup, performer, replication, action) and every PKU recording
session has its own generator seeded from (seed, ids); the camera views of one performance share it and
differ only in the view, as in the real datasets, where the cameras record simultaneously.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hacm.benchmarks import BENCHMARKS, DATASETS
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
    SPINE_BASE,
    SPINE_MID,
    SPINE_SHOULDER,
)
from hacm.data.ntu import JOINT_VALUES as NTU_VALUES_PER_JOINT
from hacm.data.ntu import parse_ntu_name
from hacm.data.splits import NTU60_SETUPS, is_ntu60_sample

GENERATOR_VERSION = 5
MANIFEST_NAME = "synthetic_manifest.json"

# ---------------------------------------------------------------------------------------------------
# Classes
# ---------------------------------------------------------------------------------------------------

CLASS_NAMES: tuple[str, ...] = (
    "raise hands: right, left, both",
    "raise hands: left, both, right",
    "raise hands: both, right, left",
    "circle right hand clockwise",
    "circle right hand anticlockwise",
    "circle right hand clockwise, then back",
    "kick right, kick left, bow",
    "kick left, bow, kick right",
    "bow, kick right, kick left",
    "two people: step closer, shake hands, hug",
    "two people: shake hands, hug, step closer",
    "two people: hug, step closer, shake hands",
    "raise right hand, kick left, bow",
    "kick left, bow, raise right hand",
    "bow, raise right hand, kick left",
)
NUM_CLASSES = len(CLASS_NAMES)  # the label space of the NTU-120 stores
NTU60_NUM_CLASSES = 12  # the classes performed in the NTU-60 setups; PKU-MMD uses these too

# Each class is a sequence of motion pieces (ordered classes) or hand circles with a sense of rotation.
_ORDERED_PIECES: dict[int, tuple[str, ...]] = {
    0: ("raise_right", "raise_left", "raise_both"),
    1: ("raise_left", "raise_both", "raise_right"),
    2: ("raise_both", "raise_right", "raise_left"),
    6: ("kick_right", "kick_left", "bow"),
    7: ("kick_left", "bow", "kick_right"),
    8: ("bow", "kick_right", "kick_left"),
    9: ("step_closer", "shake_hands", "hug"),
    10: ("shake_hands", "hug", "step_closer"),
    11: ("hug", "step_closer", "shake_hands"),
    12: ("raise_right", "kick_left", "bow"),
    13: ("kick_left", "bow", "raise_right"),
    14: ("bow", "raise_right", "kick_left"),
}
_CIRCLE_SENSES: dict[int, str] = {3: "clockwise", 4: "anticlockwise", 5: "there and back"}
TWO_PERSON_CLASSES: frozenset[int] = frozenset({9, 10, 11})

# ---------------------------------------------------------------------------------------------------
# Limbs of the Kinect v2 skeleton (hacm.data.kinect)
# ---------------------------------------------------------------------------------------------------

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
_DOF_NAMES = (
    "bend", "step",
    "r_flex", "r_abd", "r_elbow", "l_flex", "l_abd", "l_elbow",
    "r_hip", "r_knee", "l_hip", "l_knee",
)

# ---------------------------------------------------------------------------------------------------
# Motion and nuisance parameters
# ---------------------------------------------------------------------------------------------------

_PIECE_RAMP = 0.5  # share of a motion piece spent rising (and falling): 0.5 = no pause at the peak
_PULSES, _PULSE_DEPTH = (0, 1, 2), 0.2  # per class of an ordered group: swells of each piece, +-20 %
_CIRCLE_RAMP = 0.2  # share of the action spent raising (and lowering) the arm; it circles in between
_CIRCLE_CYCLES = 2  # whole circles while the arm is up ("there and back": one each way)
_CIRCLE_EASE = 0.1  # share of the circling spent growing (and shrinking) the circle from (to) its centre
_PIECE_GAP = 0.03  # rest between consecutive pieces, as a share of the action
_ACTION_MARGIN = 0.08  # rest before and after the action, as a share of the sequence
_AMPLITUDE_JITTER = 0.15  # each piece's amplitude is scaled by 1 +- this
_TIME_WARP = (0.12, 0.05)  # max weights of sin(pi t) and sin(2 pi t) in the warp; keeps it monotone
# Peak offsets of each motion piece, in degrees ("step" in metres).
_PIECE_AMPLITUDES: dict[str, dict[str, float]] = {
    "raise_right": {"r_flex": 150.0, "r_elbow": 15.0},
    "raise_left": {"l_flex": 150.0, "l_elbow": 15.0},
    "raise_both": {"r_flex": 150.0, "r_elbow": 15.0, "l_flex": 150.0, "l_elbow": 15.0},
    "kick_right": {"r_hip": 75.0},
    "kick_left": {"l_hip": 75.0},
    "bow": {"bend": 55.0, "r_flex": 45.0, "l_flex": 45.0},  # the arms keep hanging while the trunk tilts
    "step_closer": {"step": 0.25},
    "shake_hands": {"r_flex": 65.0, "r_elbow": 20.0},
    "hug": {"step": 0.40, "r_flex": 85.0, "r_abd": 20.0, "r_elbow": 60.0,
            "l_flex": 85.0, "l_abd": 20.0, "l_elbow": 60.0},
}
_KICK_KNEE_DEG = 50.0
_SHAKE_CYCLES, _SHAKE_AMPLITUDE_DEG = 3, 12.0
_CIRCLE_RAISE_DEG = {"r_flex": 90.0, "r_abd": 15.0, "r_elbow": 10.0}  # arm forwards, towards the camera
_CIRCLE_AMPLITUDE_DEG = 30.0  # the hand draws a circle of ~0.3 m radius in front of the body
_PARTNER_LAG = 0.03  # the partner's reaction delay, as a share of the action, at most
_PAIR_SEPARATION_M = (1.35, 1.55)  # distance between two people at rest
_QUARTER_TURN = np.pi / 2  # heading that makes a person (facing -z) face +x (negative) or -x (positive)
_REST_ARM_ABD_DEG, _REST_ELBOW_DEG, _REST_BEND_DEG = (4.0, 14.0), (5.0, 20.0), (-3.0, 5.0)
_SWAY_M, _SWAY_SHARE, _SWAY_PERIOD_FRAMES = (0.035, 0.01, 0.035), (0.3, 1.0), (30.0, 90.0)  # x y z
_SUBJECT_SCALE = (0.86, 1.12)  # per performer
_PERFORMANCE_SCALE_JITTER = 0.02
_JOINT_NOISE_M = 0.002
_EXTREMITY_NOISE_M = 0.005  # hand tips, thumbs and feet are tracked worse
_NOISE_SMOOTHING_FRAMES = 3.0  # std of the Gaussian smoothing, in frames
_CAMERA_PITCH_DEG = 4.0
_SCENE_X_M, _SCENE_Z_M, _SCENE_Y_M = (-0.3, 0.3), (2.7, 3.6), (-0.05, 0.25)  # spine base position
_PAIR_EXTRA_DEPTH_M = 0.4  # two people stand a little further from the camera

# Seeds: (seed, salt, ids...) so that different streams never share a generator.
_NTU_SALT, _PKU_SALT, _DATASET_SALT, _PERFORMER_SALT = 1, 2, 3, 4

# ---------------------------------------------------------------------------------------------------
# NTU layout: enough performers, cameras and setups for the x-sub, x-view and x-set rules
# ---------------------------------------------------------------------------------------------------

# Setups 1-4 belong to NTU-60 (performers 1-8: train 1 2 4 5 8, test 3 6 7); setups 18-19 only to
# NTU-120 (performers 45 46 train, 48 51 test under its x-sub; setup 18 train, 19 test under x-set).
NTU_SETUP_PERFORMERS: dict[int, tuple[int, ...]] = {1: (1, 3), 2: (2, 6), 3: (4, 7), 4: (5, 8), 18: (45, 48), 19: (46, 51)}
NTU_CAMERAS = (1, 2, 3)
NTU_REPLICATIONS = (1, 2)
NTU_CAMERA_YAW_DEG = {1: 0.0, 2: 30.0, 3: -30.0}
_YAW_JITTER_DEG = 15.0  # camera yaw stays within +-45 degrees
NTU_FRAMES = (40, 100)
NTU_DIR, NTU_SKELETON_DIR = "ntu", "nturgb+d_skeletons"
_MISSING_FRACTION = 0.01
_CRLF_FRACTION = 0.5  # the official files have CRLF line ends; some copies in circulation have LF

# Extra bodies and empty frames, as in the real recordings.
_SHORT_BODY_PROBABILITY, _SHORT_BODY_FRAMES = 0.08, (2, 11)  # denoising drops bodies seen <= 11 frames
_GHOST_POSITION_M = ((-1.0, 1.0), (-0.2, 0.3), (3.0, 4.5))  # x y z ranges of a spurious person
_FURNITURE_PROBABILITY, _FURNITURE_MIN_FRAMES = 0.05, 12
_FURNITURE_WIDTH_M, _FURNITURE_HEIGHT_M, _FURNITURE_DEPTH_M = (1.0, 1.6), (0.05, 0.3), 0.3
_FURNITURE_CENTRE_M = ((-1.2, 1.2), (-0.6, -0.1), (3.0, 4.5))
_EMPTY_EDGE_PROBABILITY, _EMPTY_EDGE_FRAMES = 0.1, (1, 4)
_BODY_ID_BASE = 72057594037927936  # 2**56: Kinect v2 body ids are this plus a tracking counter
_BODY_ID_COUNTER = (1000, 100000)
# Fields of the body line that the pipeline does not use: clipped edges, hand-left confidence and
# state, hand-right confidence and state, restricted; after them lean x, lean y and the tracking state.
_BODY_LINE_FLAGS = "0 1 1 1 1 0"
_TRACKED = 2
_ORIENTATION_WXYZ = (1.0, 0.0, 0.0, 0.0)
# Kinect v2 intrinsics, roughly: depth 512x424, colour 1920x1080.
_DEPTH_FOCAL, _DEPTH_CENTRE = 365.0, (256.0, 212.0)
_COLOUR_FOCAL, _COLOUR_CENTRE = 1060.0, (960.0, 540.0)
_SIGNIFICANT_DIGITS = 7

# ---------------------------------------------------------------------------------------------------
# PKU-MMD layout
# ---------------------------------------------------------------------------------------------------

# Four training and four test subjects under x-sub: 75 test samples (two test subjects, version 4) left a
# 16-point difference between encoders with a 95 % interval that reached zero. Every subject's recordings
# come from its own generator, so adding subjects changes no other subject's files.
PKU_SUBJECTS = (1, 2, 3, 4, 5, 6, 7, 8)
PKU_SESSIONS = (1, 2)  # recordings per subject; together they hold every class
PKU_VIEWS = ("L", "M", "R")
PKU_VIEW_YAW_DEG = {"L": 45.0, "M": 0.0, "R": -45.0}
_PKU_VIEW_YAW_JITTER_DEG = 5.0
PKU_TRAIN_SUBJECTS = (1, 2, 3, 4)
PKU_TRAIN_VIEWS = ("M", "R")
PKU_PHASE_DIRS = {1: "pku1", 2: "pku2"}
PKU_SPLIT_FILES = {  # the names of the official download (the benchmark registry's first)
    phase: {"cross-subject": BENCHMARKS[f"pku{phase}-xsub"].split_files[0],
            "cross-view": BENCHMARKS[f"pku{phase}-xview"].split_files[0]} for phase in (1, 2)
}
_PKU_ACTION_FRAMES = (40, 100)
_PKU_GAP_FRAMES = (10, 30)
_PKU_EDGE_FRAMES = (15, 30)
_PKU_EXTRA_ACTIONS = (0, 1)  # random repeats on top of the session's share of the classes
_PKU_TURN_FRAMES = 12  # turning towards (and away from) the partner, outside the labelled interval
_PKU_PARTNER_MARGIN = 4  # frames the partner is visible before and after an interaction
_PKU_DECIMALS = 6


# ===================================================================================================
# Small geometry helpers
# ===================================================================================================


def _rotation(axis: int, angles: np.ndarray) -> np.ndarray:
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


def _apply(rotations: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Rotate one vector (3,) or per-frame vectors (T, 3) by per-frame rotations (T, 3, 3)."""
    if vector.ndim == 1:
        return rotations @ vector
    return np.einsum("tij,tj->ti", rotations, vector)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _piece_profile(u: np.ndarray, ramp: float = _PIECE_RAMP) -> np.ndarray:
    """A bump on [0, 1]: 0 outside, smooth rise and fall, 1 in the middle (a plateau when ramp < 0.5).

    Its values are spread the same way whatever interval it is stretched over, which is what keeps
    the time-averaged pose equal across the classes of a group.
    """
    rise = _smoothstep(u / ramp)
    fall = _smoothstep((1.0 - u) / ramp)
    return np.where((u > 0.0) & (u < 1.0), np.minimum(rise, fall), 0.0)


def round_significant(values: np.ndarray, digits: int = _SIGNIFICANT_DIGITS) -> np.ndarray:
    """Round to `digits` significant digits, the precision that `%.{digits}G` prints."""
    values = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(values)
    exponent = np.floor(np.log10(np.where(magnitude > 0.0, magnitude, 1.0)))
    factor = 10.0 ** (digits - 1 - exponent)
    return np.round(values * factor) / factor + 0.0  # + 0.0 turns -0.0 into 0.0


# ===================================================================================================
# Motion: degrees of freedom over time
# ===================================================================================================


def _zero_dofs(num_frames: int) -> dict[str, np.ndarray]:
    return {name: np.zeros(num_frames) for name in _DOF_NAMES}


def _add_piece(dofs: dict[str, np.ndarray], piece: str, u: np.ndarray, rng: np.random.Generator,
               pulses: int = 0) -> None:
    """Add one motion piece over local time u (0..1 inside the piece) to a person's DOFs; `pulses` whole
    swells of the amplitude ride on it (a style of the class, invisible in the time-averaged pose)."""
    bump = _piece_profile(u) * (1.0 + rng.uniform(-_AMPLITUDE_JITTER, _AMPLITUDE_JITTER))
    if pulses:
        bump = bump * (1.0 + _PULSE_DEPTH * np.sin(2.0 * np.pi * pulses * np.clip(u, 0.0, 1.0)))
    for dof, amplitude in _PIECE_AMPLITUDES[piece].items():
        dofs[dof] += (amplitude if dof == "step" else np.deg2rad(amplitude)) * bump
    if piece.startswith("kick_"):  # the knee bends on the way up and straightens at the top
        chamber = 4.0 * bump * (1.0 - np.minimum(bump, 1.0))
        dofs[f"{piece[len('kick_')]}_knee"] += np.deg2rad(_KICK_KNEE_DEG) * chamber
    if piece == "shake_hands":
        shake = np.sin(2.0 * np.pi * _SHAKE_CYCLES * np.clip(u, 0.0, 1.0))
        dofs["r_elbow"] += np.deg2rad(_SHAKE_AMPLITUDE_DEG) * shake * bump


def _add_ordered_pieces(dofs, pieces: tuple[str, ...], action_time: np.ndarray, rng, pulses: int = 0) -> None:
    share = 1.0 / len(pieces)
    for index, piece in enumerate(pieces):
        start, end = index * share + _PIECE_GAP / 2, (index + 1) * share - _PIECE_GAP / 2
        _add_piece(dofs, piece, (action_time - start) / (end - start), rng, pulses)


def _add_circles(dofs, sense: str, action_time: np.ndarray, rng) -> None:
    """Raise the right arm forwards, draw circles with the hand in the frontal plane, lower it.

    The two senses are each other's time reversal, so the hand visits the same places for the same time
    in both; "there and back" (one clockwise circle, then back along it) does too, up to the circle's
    growing and shrinking. The direction of travel, visible in any three consecutive frames, tells
    the classes apart.
    """
    raised = _piece_profile(action_time, _CIRCLE_RAMP) * (1.0 + rng.uniform(-_AMPLITUDE_JITTER, _AMPLITUDE_JITTER))
    for dof, amplitude in _CIRCLE_RAISE_DEG.items():
        dofs[dof] += np.deg2rad(amplitude) * raised
    plateau_time = np.clip((action_time - _CIRCLE_RAMP) / (1.0 - 2.0 * _CIRCLE_RAMP), 0.0, 1.0)
    circle_time = plateau_time
    if sense == "anticlockwise":
        circle_time = 1.0 - plateau_time
    elif sense == "there and back":
        circle_time = (1.0 - np.abs(1.0 - 2.0 * plateau_time)) / 2.0
    angle = 2.0 * np.pi * _CIRCLE_CYCLES * circle_time
    # the circle grows from its centre and shrinks back, so the arm moves smoothly into and out of it
    radius = np.deg2rad(_CIRCLE_AMPLITUDE_DEG) * _piece_profile(plateau_time, _CIRCLE_EASE)
    dofs["r_flex"] += radius * np.sin(angle)
    dofs["r_abd"] += radius * np.cos(angle)


def action_dofs(label: int, action_time: np.ndarray, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """DOF offsets of each person (one, or two for interactions) over normalised action time (0..1)."""
    num_people = 2 if label in TWO_PERSON_CLASSES else 1
    people = []
    for person in range(num_people):
        # The partner reacts slightly later; the pieces still fit inside the action.
        lag = rng.uniform(0.0, _PARTNER_LAG) if person else 0.0
        local_time = (action_time - lag) / (1.0 - _PARTNER_LAG) if num_people == 2 else action_time
        dofs = _zero_dofs(len(action_time))
        if label in _CIRCLE_SENSES:
            _add_circles(dofs, _CIRCLE_SENSES[label], local_time, rng)
        else:
            _add_ordered_pieces(dofs, _ORDERED_PIECES[label], local_time, rng, _PULSES[label % 3])
        people.append(dofs)
    return people


def _time_warp(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Normalised time 0..1 over the frames, warped smoothly (monotone) to vary the local speed."""
    t = np.linspace(0.0, 1.0, num_frames)
    first, second = (rng.uniform(-w, w) for w in _TIME_WARP)
    return t + first * np.sin(np.pi * t) / np.pi + second * np.sin(2.0 * np.pi * t) / (2.0 * np.pi)


def _rest_dofs(num_frames: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A person's own rest pose (arms slightly out, elbows slightly bent, a lean)."""
    dofs = _zero_dofs(num_frames)
    for side in "rl":
        dofs[f"{side}_abd"] += np.deg2rad(rng.uniform(*_REST_ARM_ABD_DEG))
        dofs[f"{side}_elbow"] += np.deg2rad(rng.uniform(*_REST_ELBOW_DEG))
    dofs["bend"] += np.deg2rad(rng.uniform(*_REST_BEND_DEG))
    return dofs


def _sway(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(T, 1, 3) slow random sway of the whole body, in the body frame."""
    t = np.arange(num_frames)[:, None]
    period = rng.uniform(*_SWAY_PERIOD_FRAMES, size=(1, 3))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(1, 3))
    amplitude = rng.uniform(*_SWAY_SHARE, size=(1, 3)) * np.asarray(_SWAY_M)
    return (amplitude * np.sin(2.0 * np.pi * t / period + phase))[:, None, :]


# ===================================================================================================
# Kinematics: DOFs -> joints
# ===================================================================================================


def _arm(joints, side: int, dofs, trunk: np.ndarray, scale: float) -> None:
    prefix = "r" if side > 0 else "l"
    shoulder_j, elbow_j, wrist_j, hand_j, tip_j, thumb_j = _ARM_JOINTS[side]
    flex, abd = dofs[f"{prefix}_flex"], dofs[f"{prefix}_abd"]
    upper = trunk @ _rotation(2, side * abd) @ _rotation(0, flex)
    fore = trunk @ _rotation(2, side * abd) @ _rotation(0, flex + dofs[f"{prefix}_elbow"])
    shoulder = _apply(trunk, np.array([side * _SHOULDER_HALF_WIDTH, _SHOULDER_HEIGHT, 0.0]) * scale)
    elbow = shoulder + _apply(upper, _DOWN * _UPPER_ARM * scale)
    wrist = elbow + _apply(fore, _DOWN * _FOREARM * scale)
    thumb_direction = _THUMB_DIRECTION * np.array([side, 1.0, 1.0]) / np.linalg.norm(_THUMB_DIRECTION)
    joints[:, shoulder_j] = shoulder
    joints[:, elbow_j] = elbow
    joints[:, wrist_j] = wrist
    joints[:, hand_j] = wrist + _apply(fore, _DOWN * _HAND * scale)
    joints[:, tip_j] = wrist + _apply(fore, _DOWN * _HAND_TIP * scale)
    joints[:, thumb_j] = wrist + _apply(fore, thumb_direction * _THUMB * scale)


def _leg(joints, side: int, dofs, scale: float) -> None:
    prefix = "r" if side > 0 else "l"
    hip_j, knee_j, ankle_j, foot_j = _LEG_JOINTS[side]
    hip_flex = dofs[f"{prefix}_hip"]
    thigh = _rotation(0, hip_flex)
    shin = _rotation(0, hip_flex - dofs[f"{prefix}_knee"])  # the knee bends backwards
    hip = np.array([side * _HIP_HALF_WIDTH, _HIP_HEIGHT, 0.0]) * scale
    knee = hip + _apply(thigh, _DOWN * _THIGH * scale)
    ankle = knee + _apply(shin, _DOWN * _SHIN * scale)
    joints[:, hip_j] = hip
    joints[:, knee_j] = knee
    joints[:, ankle_j] = ankle
    joints[:, foot_j] = ankle + _apply(shin, _FOOT_OFFSET * scale)


def skeleton_from_dofs(dofs: dict[str, np.ndarray], *, scale: float) -> np.ndarray:
    """(T, 25, 3) joints in the person's body frame, spine base at the origin, feet on the floor."""
    num_frames = len(dofs["bend"])
    joints = np.zeros((num_frames, NUM_JOINTS, 3))
    trunk = _rotation(0, -dofs["bend"])  # bending forwards tilts the trunk towards -z
    for joint, offset in _TRUNK_REST.items():
        joints[:, joint] = _apply(trunk, np.asarray(offset) * scale)
    for side in (+1, -1):
        _arm(joints, side, dofs, trunk, scale)
        _leg(joints, side, dofs, scale)
    # Whichever foot is lower stays on the floor (nothing changes while one leg is straight).
    rest_ankle_height = _HIP_HEIGHT * scale - (_THIGH + _SHIN) * scale
    lift = rest_ankle_height - np.minimum(joints[:, L_ANKLE, 1], joints[:, R_ANKLE, 1])
    joints[:, :, 1] += lift[:, None]
    joints[:, :, 2] -= dofs["step"][:, None]  # forwards is -z
    return joints


def _place(joints: np.ndarray, *, heading: np.ndarray | float, position: np.ndarray) -> np.ndarray:
    """Turn a person (about the vertical axis) and put the spine base at `position` (T, 3) or (3,)."""
    heading = np.broadcast_to(np.asarray(heading, dtype=np.float64), joints.shape[:1])
    return np.einsum("tij,tvj->tvi", _rotation(1, heading), joints) + np.asarray(position)[..., None, :]


def _camera_view(scene: np.ndarray, *, yaw: float, pitch: float, offset: np.ndarray) -> np.ndarray:
    """Scene coordinates (..., 3) -> camera coordinates: turn by yaw, move away, tilt by pitch."""
    yaw_rotation = _rotation(1, np.float64(yaw))
    pitch_rotation = _rotation(0, np.float64(pitch))
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


def _add_joint_noise(joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Kinect's tracker smooths its output, so its jitter drifts over a few frames rather than being
    # independent per frame; frame-to-frame motion then carries the action, not the sensor noise.
    sigma = np.full(NUM_JOINTS, _JOINT_NOISE_M)
    sigma[[L_HAND_TIP, L_THUMB, R_HAND_TIP, R_THUMB, L_FOOT, R_FOOT]] = _EXTREMITY_NOISE_M
    noise = rng.normal(size=joints.shape)
    if joints.ndim == 3 and len(joints) > 1:
        noise = _temporally_smooth(noise, _NOISE_SMOOTHING_FRAMES)
    return joints + noise * sigma[:, None]


# ===================================================================================================
# NTU RGB+D: performances, views and the .skeleton text
# ===================================================================================================


def ntu_name(setup: int, camera: int, performer: int, replication: int, action: int) -> str:
    return f"S{setup:03d}C{camera:03d}P{performer:03d}R{replication:03d}A{action:03d}"


def ntu_setup_actions(setup: int) -> range:
    """The actions (1-based) performed in a setup: the NTU-60 classes, and in NTU-120 setups all of them."""
    return range(1, (NTU60_NUM_CLASSES if setup in NTU60_SETUPS else NUM_CLASSES) + 1)


def ntu_sample_names() -> list[str]:
    """All synthetic NTU sample names, sorted (the same for every seed)."""
    return sorted(
        ntu_name(setup, camera, performer, replication, action)
        for setup, performers in NTU_SETUP_PERFORMERS.items()
        for performer in performers
        for camera in NTU_CAMERAS
        for replication in NTU_REPLICATIONS
        for action in ntu_setup_actions(setup)
    )


def performer_scale(performer: int) -> float:
    """A performer's body size; fixed per performer id so that x-sub tests unseen body sizes."""
    return float(np.random.default_rng([_PERFORMER_SALT, performer]).uniform(*_SUBJECT_SCALE))


def ntu_performance_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of one performance: shared by the camera views of (setup, performer, replication, action)."""
    parsed = parse_ntu_name(name)
    return np.random.default_rng([seed, _NTU_SALT, parsed.setup, parsed.performer, parsed.replication, parsed.action])


def _ntu_people(label: int, performer: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The scene joints (T, 25, 3) of each person of one performance (one, or two facing each other)."""
    num_frames = int(rng.integers(NTU_FRAMES[0], NTU_FRAMES[1] + 1))
    warped = _time_warp(num_frames, rng)
    action_time = (warped - _ACTION_MARGIN) / (1.0 - 2.0 * _ACTION_MARGIN)
    people_dofs = action_dofs(label, action_time, rng)
    scales = [performer_scale(performer) * (1.0 + rng.uniform(-_PERFORMANCE_SCALE_JITTER, _PERFORMANCE_SCALE_JITTER))]
    if len(people_dofs) == 2:
        scales.append(float(rng.uniform(*_SUBJECT_SCALE)))
    separation = rng.uniform(*_PAIR_SEPARATION_M)
    scenes = []
    for person, (dofs, scale) in enumerate(zip(people_dofs, scales)):
        rest = _rest_dofs(num_frames, rng)
        body = skeleton_from_dofs({k: rest[k] + dofs[k] for k in _DOF_NAMES}, scale=scale)
        body += _sway(num_frames, rng)
        if len(people_dofs) == 1:
            scenes.append(_place(body, heading=0.0, position=np.zeros(3)))
        else:  # face each other along the scene x axis: person 0 looks towards +x, person 1 towards -x
            side = -1.0 if person == 0 else 1.0
            heading = _QUARTER_TURN * side
            scenes.append(_place(body, heading=heading, position=np.array([side * separation / 2, 0.0, 0.0])))
    return scenes


def _camera_frames(scenes: list[np.ndarray], *, yaw_deg: float, two_people: bool, rng) -> list[np.ndarray]:
    """Place the scene in front of a camera at a random position and tilt; add sensor noise."""
    yaw = np.deg2rad(yaw_deg + rng.uniform(-_YAW_JITTER_DEG, _YAW_JITTER_DEG))
    pitch = np.deg2rad(rng.uniform(-_CAMERA_PITCH_DEG, _CAMERA_PITCH_DEG))
    offset = np.array([
        rng.uniform(*_SCENE_X_M),
        rng.uniform(*_SCENE_Y_M),
        rng.uniform(*_SCENE_Z_M) + (_PAIR_EXTRA_DEPTH_M if two_people else 0.0),
    ])
    return [_add_joint_noise(_camera_view(scene, yaw=yaw, pitch=pitch, offset=offset), rng) for scene in scenes]


def _short_lived_body(num_frames: int, rng) -> tuple[int, np.ndarray]:
    """A spurious body seen for at most 11 frames: a person-like ghost somewhere in the room."""
    length = int(rng.integers(_SHORT_BODY_FRAMES[0], min(_SHORT_BODY_FRAMES[1], num_frames) + 1))
    start = int(rng.integers(0, num_frames - length + 1))
    body = skeleton_from_dofs(_rest_dofs(length, rng), scale=float(rng.uniform(*_SUBJECT_SCALE)))
    position = np.array([rng.uniform(*limits) for limits in _GHOST_POSITION_M])
    body = _place(body, heading=rng.uniform(-np.pi, np.pi), position=position)
    return start, _add_joint_noise(body, rng)


def _furniture_body(num_frames: int, rng) -> tuple[int, np.ndarray]:
    """A wide, flat 'body' (a table or sofa taken for a person): x-range far above 0.8 x its y-range."""
    length = int(rng.integers(min(_FURNITURE_MIN_FRAMES, num_frames), num_frames + 1))
    start = int(rng.integers(0, num_frames - length + 1))
    width, height = rng.uniform(*_FURNITURE_WIDTH_M), rng.uniform(*_FURNITURE_HEIGHT_M)
    centre = np.array([rng.uniform(*limits) for limits in _FURNITURE_CENTRE_M])
    half_size = np.array([width, height, _FURNITURE_DEPTH_M]) / 2
    layout = rng.uniform(-half_size, half_size, size=(NUM_JOINTS, 3))
    jitter = rng.normal(scale=_JOINT_NOISE_M, size=(length, NUM_JOINTS, 3))
    return start, centre + layout + jitter


def _distinct_body_ids(count: int, rng) -> list[str]:
    low, high = _BODY_ID_COUNTER
    counters = low + rng.choice(high - low, size=count, replace=False)
    return [str(_BODY_ID_BASE + int(counter)) for counter in counters]


def _kinect_columns(xyz: np.ndarray) -> np.ndarray:
    """(..., 25, 3) xyz -> (..., 25, 12) NTU joint columns; xyz rounded to the printed precision."""
    xyz = round_significant(xyz)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    columns = np.empty(xyz.shape[:-1] + (NTU_VALUES_PER_JOINT,))
    columns[..., 0:3] = xyz
    columns[..., 3] = _DEPTH_CENTRE[0] + _DEPTH_FOCAL * x / z
    columns[..., 4] = _DEPTH_CENTRE[1] - _DEPTH_FOCAL * y / z
    columns[..., 5] = _COLOUR_CENTRE[0] + _COLOUR_FOCAL * x / z
    columns[..., 6] = _COLOUR_CENTRE[1] - _COLOUR_FOCAL * y / z
    columns[..., 7:11] = _ORIENTATION_WXYZ
    columns[..., 11] = _TRACKED
    return columns


def synthesize_ntu_bodies(name: str, rng: np.random.Generator) -> list[list[tuple[str, np.ndarray]]]:
    """Per frame, the (body id, (25, 12) joint columns) of every body in one synthetic NTU file.

    `rng` drives the performance (what the name's setup, performer, replication and action do); the
    view (camera placement, sensor noise, spurious bodies, empty edge frames) comes from a child
    generator seeded by `rng` and the camera id, so the same `rng` state with the three camera names
    gives three views of one performance. The x y z columns hold exactly the printed values.
    """
    parsed = parse_ntu_name(name)
    label = parsed.action - 1
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"{name}: action {parsed.action} outside the synthetic classes 1..{NUM_CLASSES}")
    view_seed = int(rng.integers(2**63))
    scenes = _ntu_people(label, parsed.performer, rng)
    view_rng = np.random.default_rng([view_seed, parsed.camera])
    two_people = len(scenes) == 2
    actors = _camera_frames(scenes, yaw_deg=NTU_CAMERA_YAW_DEG[parsed.camera], two_people=two_people, rng=view_rng)
    num_frames = len(actors[0])

    tracks: list[tuple[int, np.ndarray]] = [(0, actor) for actor in actors]  # (first frame, joints)
    if view_rng.random() < _SHORT_BODY_PROBABILITY:
        tracks.append(_short_lived_body(num_frames, view_rng))
    if view_rng.random() < _FURNITURE_PROBABILITY:
        tracks.append(_furniture_body(num_frames, view_rng))
    body_ids = _distinct_body_ids(len(tracks), view_rng)

    frames: list[list[tuple[str, np.ndarray]]] = [[] for _ in range(num_frames)]
    for body_id, (start, joints) in zip(body_ids, tracks):
        for offset, columns in enumerate(_kinect_columns(joints)):
            frames[start + offset].append((body_id, columns))

    if view_rng.random() < _EMPTY_EDGE_PROBABILITY:
        leading, trailing = view_rng.integers(_EMPTY_EDGE_FRAMES[0] - 1, _EMPTY_EDGE_FRAMES[1] + 1, size=2)
        frames = [[] for _ in range(leading)] + frames + [[] for _ in range(trailing)]
    return frames


_NTU_JOINT_LINE = " ".join(["%.7G"] * (NTU_VALUES_PER_JOINT - 1)) + " %d\n"
_NTU_JOINT_BLOCK = f"{NUM_JOINTS}\n" + _NTU_JOINT_LINE * NUM_JOINTS


def _lean(columns: np.ndarray) -> np.ndarray:
    """Kinect's lean (-1..1) of (N, 25, 12) bodies: spine shoulder relative to spine base, sideways and
    towards the camera; (N, 2)."""
    trunk = columns[:, SPINE_SHOULDER, :3] - columns[:, SPINE_BASE, :3]
    length = np.linalg.norm(trunk, axis=1)
    length[length == 0.0] = 1.0
    return np.clip(np.stack([trunk[:, 0], -trunk[:, 2]], axis=1) / length[:, None], -1.0, 1.0)


def format_ntu_skeleton(frames: list[list[tuple[str, np.ndarray]]]) -> str:
    """The text of an NTU `.skeleton` file (LF line ends) for per-frame lists of (body id, (25, 12))."""
    bodies = [(body_id, np.asarray(columns, dtype=np.float64)) for frame in frames for body_id, columns in frame]
    for body_id, columns in bodies:
        if columns.shape != (NUM_JOINTS, NTU_VALUES_PER_JOINT):
            raise ValueError(f"body {body_id}: joints must be (25, 12), got {columns.shape}")
    leans = _lean(np.stack([columns for _, columns in bodies])).tolist() if bodies else []
    pieces = [f"{len(frames)}\n"]
    index = 0
    for frame in frames:
        pieces.append(f"{len(frame)}\n")
        for body_id, columns in bodies[index : index + len(frame)]:
            lean_x, lean_y = leans[index]
            pieces.append(f"{body_id} {_BODY_LINE_FLAGS} {lean_x:.7G} {lean_y:.7G} {_TRACKED}\n")
            pieces.append(_NTU_JOINT_BLOCK % tuple(columns.ravel().tolist()))
            index += 1
    return "".join(pieces)


def _write_text(path: Path, text: str, *, crlf: bool = False) -> None:
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes(text.encode("ascii"))


def _missing_list_text(names: list[str]) -> str:
    """The official layout: two header sentences, a blank line, then one name per line."""
    header = (
        f'{len(names)} of the captured samples in the synthetic "NTU RGB+D" dataset have missing or '
        "incomplete skeleton data.\n"
        "If you are working on skeleton-based analysis, please ignore these files in your training and "
        "testing procedures.\n\n"
    )
    return header + "".join(f"{name}\n" for name in names)


def _choose_fraction(names: list[str], fraction: float, rng) -> set[str]:
    count = max(1, round(fraction * len(names)))
    return {names[i] for i in rng.choice(len(names), size=count, replace=False)}


def write_ntu(ntu_dir: Path, *, seed: int, progress: Callable[[Iterable], Iterable] = iter) -> dict:
    """Write every synthetic NTU file and the missing-skeleton list; return their counts."""
    skeleton_dir = ntu_dir / NTU_SKELETON_DIR
    skeleton_dir.mkdir(parents=True, exist_ok=True)
    names = ntu_sample_names()
    dataset_rng = np.random.default_rng([seed, _DATASET_SALT])
    missing = _choose_fraction(names, _MISSING_FRACTION, dataset_rng)
    crlf = _choose_fraction(names, _CRLF_FRACTION, dataset_rng)
    for name in progress(names):
        frames = synthesize_ntu_bodies(name, ntu_performance_rng(seed, name))
        if name in missing:  # the sensor lost the performer in every frame
            frames = [[] for _ in frames]
        _write_text(skeleton_dir / f"{name}.skeleton", format_ntu_skeleton(frames), crlf=name in crlf)
    # Both official lists, as the real downloads have them: NTU-60's names only its own samples.
    _write_text(ntu_dir / DATASETS["ntu60"].missing_list, _missing_list_text(sorted(filter(is_ntu60_sample, missing))))
    _write_text(ntu_dir / DATASETS["ntu120"].missing_list, _missing_list_text(sorted(missing)))
    return {"files": len(names), "missing_skeletons": len(missing)}


# ===================================================================================================
# PKU-MMD: long recordings with labelled action intervals
# ===================================================================================================


@dataclass(frozen=True)
class PkuAction:
    label: int  # 0-based class index
    start: int  # first frame, 0-based
    end: int  # last frame, inclusive
    confidence: int


def pku_video_id(phase: int, subject: int, session: int) -> str:
    """Phase I ids are 4 digits (`0003`), phase II ids `A02N01`; the view letter is appended."""
    if phase == 1:
        return f"{(subject - 1) * len(PKU_SESSIONS) + session:04d}"
    return f"A{subject:02d}N{session:02d}"


def _pku_schedule(labels: list[int], rng) -> tuple[int, list[PkuAction]]:
    """Frame intervals of the actions, with idle gaps (longer around interactions, to turn)."""
    cursor = int(rng.integers(*_PKU_EDGE_FRAMES))
    actions = []
    for index, label in enumerate(labels):
        if index > 0:
            cursor += int(rng.integers(*_PKU_GAP_FRAMES))
        # Room to turn away after an interaction and towards the partner before one.
        turns = int(label in TWO_PERSON_CLASSES) + int(index > 0 and labels[index - 1] in TWO_PERSON_CLASSES)
        cursor += turns * (_PKU_TURN_FRAMES + _PKU_PARTNER_MARGIN)
        length = int(rng.integers(_PKU_ACTION_FRAMES[0], _PKU_ACTION_FRAMES[1] + 1))
        actions.append(PkuAction(label, cursor, cursor + length - 1, int(rng.integers(1, 3))))
        cursor += length
    cursor += int(rng.integers(*_PKU_EDGE_FRAMES))
    if labels[-1] in TWO_PERSON_CLASSES:
        cursor += _PKU_TURN_FRAMES + _PKU_PARTNER_MARGIN
    return cursor, actions


def _pku_session_labels(subject_order: np.ndarray, session: int, rng) -> list[int]:
    """The session's share of the subject's classes plus a few repeats, in random order."""
    share = np.array_split(subject_order, len(PKU_SESSIONS))[session - 1].tolist()
    extra = rng.choice(NTU60_NUM_CLASSES, size=int(rng.integers(_PKU_EXTRA_ACTIONS[0], _PKU_EXTRA_ACTIONS[1] + 1)))
    labels = share + extra.tolist()
    return [int(label) for label in rng.permutation(labels)]


def _pku_scenes(actions: list[PkuAction], num_frames: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scene joints of the performer (T, 25, 3) and of the partner (T, 25, 3), and the partner mask."""
    scale = float(rng.uniform(*_SUBJECT_SCALE))
    dofs = _rest_dofs(num_frames, rng)
    heading = np.zeros(num_frames)
    partner = np.zeros((num_frames, NUM_JOINTS, 3))
    present = np.zeros(num_frames, dtype=bool)
    turn = -_QUARTER_TURN  # the performer turns to face the partner, who stands on the +x side
    for action in actions:
        frames = slice(action.start, action.end + 1)
        length = action.end - action.start + 1
        warped = _time_warp(length, rng)
        people = action_dofs(action.label, (warped - _ACTION_MARGIN) / (1.0 - 2.0 * _ACTION_MARGIN), rng)
        for key in _DOF_NAMES:
            dofs[key][frames] += people[0][key]
        if len(people) == 2:
            before = np.arange(action.start - _PKU_TURN_FRAMES - _PKU_PARTNER_MARGIN, action.start)
            after = np.arange(action.end + 1, action.end + 1 + _PKU_TURN_FRAMES + _PKU_PARTNER_MARGIN)
            heading[frames] = turn
            heading[before] = turn * _smoothstep((before - before[0]) / _PKU_TURN_FRAMES)
            heading[after] = turn * _smoothstep((after[-1] - after) / _PKU_TURN_FRAMES)
            visible = slice(action.start - _PKU_PARTNER_MARGIN, action.end + 1 + _PKU_PARTNER_MARGIN)
            partner_dofs = _rest_dofs(length + 2 * _PKU_PARTNER_MARGIN, rng)
            acting = slice(_PKU_PARTNER_MARGIN, _PKU_PARTNER_MARGIN + length)
            for key in _DOF_NAMES:
                partner_dofs[key][acting] += people[1][key]
            body = skeleton_from_dofs(partner_dofs, scale=float(rng.uniform(*_SUBJECT_SCALE)))
            separation = rng.uniform(*_PAIR_SEPARATION_M)
            partner[visible] = _place(body, heading=-turn, position=np.array([separation, 0.0, 0.0]))
            present[visible] = True
    performer = skeleton_from_dofs(dofs, scale=scale) + _sway(num_frames, rng)
    return _place(performer, heading=heading, position=np.zeros(3)), partner, present


def _pku_text(performer: np.ndarray, partner: np.ndarray, present: np.ndarray) -> str:
    """One line per frame: 2 bodies x 25 joints x xyz with %f; an absent partner is zeros."""
    values = np.concatenate([performer.reshape(len(performer), -1), partner.reshape(len(partner), -1)], axis=1)
    values[~present, NUM_JOINTS * 3:] = 0.0
    values = np.round(values, _PKU_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    line = " ".join(["%f"] * values.shape[1]) + "\n"
    return (line * len(values)) % tuple(values.ravel().tolist())


def _pku_labels_text(actions: list[PkuAction]) -> str:
    # 1-based labels; frame indices 0-based and inclusive, as hacm.data.pku reads them. Every interval
    # has idle frames on both sides, so a 1-based reading also stays inside the video.
    return "".join(f"{a.label + 1},{a.start},{a.end},{a.confidence}\n" for a in actions)


def pku_split_text(train: list[str], test: list[str]) -> str:
    """A split file in the official layout (training ids on line 2, test ids on line 4; its spelling)."""
    return f"Training videos: \n{', '.join(train)}\nValidataion videos: \n{', '.join(test)}\n"


def write_pku_phase(phase_dir: Path, *, phase: int, seed: int, progress: Callable[[Iterable], Iterable] = iter) -> dict:
    """Write one PKU-MMD phase: skeleton and label files per video, and the two split files."""
    for sub in ("skeleton", "label", "split"):
        (phase_dir / sub).mkdir(parents=True, exist_ok=True)
    videos, num_actions = [], 0
    sessions = [(subject, session) for subject in PKU_SUBJECTS for session in PKU_SESSIONS]
    for subject, session in progress(sessions):
        subject_rng = np.random.default_rng([seed, _PKU_SALT, phase, subject])
        subject_order = subject_rng.permutation(NTU60_NUM_CLASSES)  # the subject's sessions share out the classes
        rng = np.random.default_rng([seed, _PKU_SALT, phase, subject, session])
        labels = _pku_session_labels(subject_order, session, rng)
        num_frames, actions = _pku_schedule(labels, rng)
        performer, partner, present = _pku_scenes(actions, num_frames, rng)
        view_seed = int(rng.integers(2**63))
        for view in PKU_VIEWS:
            view_rng = np.random.default_rng([view_seed, PKU_VIEWS.index(view)])
            yaw = PKU_VIEW_YAW_DEG[view] + view_rng.uniform(-_PKU_VIEW_YAW_JITTER_DEG, _PKU_VIEW_YAW_JITTER_DEG)
            camera = _camera_frames([performer, partner], yaw_deg=yaw, two_people=False, rng=view_rng)
            video = f"{pku_video_id(phase, subject, session)}-{view}"
            _write_text(phase_dir / "skeleton" / f"{video}.txt", _pku_text(camera[0], camera[1], present))
            _write_text(phase_dir / "label" / f"{video}.txt", _pku_labels_text(actions))
            videos.append((video, subject, view))
            num_actions += len(actions)
    splits = {
        "cross-subject": [subject in PKU_TRAIN_SUBJECTS for _, subject, _ in videos],
        "cross-view": [view in PKU_TRAIN_VIEWS for _, _, view in videos],
    }
    for split, is_train in splits.items():
        train = [video for (video, _, _), keep in zip(videos, is_train) if keep]
        test = [video for (video, _, _), keep in zip(videos, is_train) if not keep]
        _write_text(phase_dir / "split" / PKU_SPLIT_FILES[phase][split], pku_split_text(train, test))
    return {"videos": len(videos), "actions": num_actions}


# ===================================================================================================
# The whole dataset
# ===================================================================================================


def read_manifest(raw_dir: Path) -> dict | None:
    """The manifest of the synthetic data under raw_dir, or None when there is none (or it is unreadable)."""
    try:
        manifest = json.loads((Path(raw_dir) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def synthetic_raw_is_current(raw_dir: Path, *, seed: int) -> bool:
    """Whether raw_dir already holds the complete synthetic data of this seed and generator version."""
    manifest = read_manifest(raw_dir)
    return bool(manifest) and manifest.get("seed") == seed and manifest.get("generator_version") == GENERATOR_VERSION


def write_synthetic_raw(raw_dir: Path, *, seed: int = 0, progress: bool = True) -> dict:
    """Write <raw_dir>/ntu, <raw_dir>/pku1 and <raw_dir>/pku2; return (and store) a small manifest.

    Idempotent: nothing is written when <raw_dir>/synthetic_manifest.json already records the same seed
    and generator version. The manifest is written last, so an interrupted run is redone in full.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    raw_dir = Path(raw_dir)
    manifest_path = raw_dir / MANIFEST_NAME
    if synthetic_raw_is_current(raw_dir, seed=seed):
        return read_manifest(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)

    def bar(description: str) -> Callable[[Iterable], Iterable]:
        if not progress:
            return iter
        from tqdm import tqdm

        return lambda items: tqdm(items, desc=description, unit="file" if description == "ntu" else "video")

    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "num_classes": NUM_CLASSES,
        "ntu60_num_classes": NTU60_NUM_CLASSES,
        "class_names": list(CLASS_NAMES),
        "two_person_classes": sorted(label + 1 for label in TWO_PERSON_CLASSES),
        "ntu": write_ntu(raw_dir / NTU_DIR, seed=seed, progress=bar("ntu")),
    }
    for phase, directory in PKU_PHASE_DIRS.items():
        manifest[directory] = write_pku_phase(raw_dir / directory, phase=phase, seed=seed, progress=bar(directory))
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
