"""Motion: each person's degrees of freedom over time, for an action (its pieces or hand circles) and at rest."""

from __future__ import annotations

import numpy as np

from hacm.data.synthetic.body import DOF_NAMES
from hacm.data.synthetic.classes import CIRCLE_SENSES, ORDERED_PIECES, TWO_PERSON_CLASSES
from hacm.data.synthetic.geometry import smoothstep

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
_REST_ARM_ABD_DEG, _REST_ELBOW_DEG, _REST_BEND_DEG = (4.0, 14.0), (5.0, 20.0), (-3.0, 5.0)
_SWAY_M, _SWAY_SHARE, _SWAY_PERIOD_FRAMES = (0.035, 0.01, 0.035), (0.3, 1.0), (30.0, 90.0)  # x y z


def _piece_profile(u: np.ndarray, ramp: float = _PIECE_RAMP) -> np.ndarray:
    """A bump on [0, 1]: 0 outside, smooth rise and fall, 1 in the middle (a plateau when ramp < 0.5).

    Its values are spread the same way whatever interval it is stretched over, which is what keeps
    the time-averaged pose equal across the classes of a group.
    """
    rise = smoothstep(u / ramp)
    fall = smoothstep((1.0 - u) / ramp)
    return np.where((u > 0.0) & (u < 1.0), np.minimum(rise, fall), 0.0)


def _zero_dofs(num_frames: int) -> dict[str, np.ndarray]:
    return {name: np.zeros(num_frames) for name in DOF_NAMES}


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
        if label in CIRCLE_SENSES:
            _add_circles(dofs, CIRCLE_SENSES[label], local_time, rng)
        else:
            _add_ordered_pieces(dofs, ORDERED_PIECES[label], local_time, rng, _PULSES[label % 3])
        people.append(dofs)
    return people


def _time_warp(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Normalised time 0..1 over the frames, warped smoothly (monotone) to vary the local speed."""
    t = np.linspace(0.0, 1.0, num_frames)
    first, second = (rng.uniform(-w, w) for w in _TIME_WARP)
    return t + first * np.sin(np.pi * t) / np.pi + second * np.sin(2.0 * np.pi * t) / (2.0 * np.pi)


def sequence_dofs(label: int, num_frames: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """action_dofs over a recording of `num_frames` frames: the action, its time warped, with rest before
    and after it."""
    warped = _time_warp(num_frames, rng)
    return action_dofs(label, (warped - _ACTION_MARGIN) / (1.0 - 2.0 * _ACTION_MARGIN), rng)


def rest_dofs(num_frames: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A person's own rest pose (arms slightly out, elbows slightly bent, a lean)."""
    dofs = _zero_dofs(num_frames)
    for side in "rl":
        dofs[f"{side}_abd"] += np.deg2rad(rng.uniform(*_REST_ARM_ABD_DEG))
        dofs[f"{side}_elbow"] += np.deg2rad(rng.uniform(*_REST_ELBOW_DEG))
    dofs["bend"] += np.deg2rad(rng.uniform(*_REST_BEND_DEG))
    return dofs


def sway(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(T, 1, 3) slow random sway of the whole body, in the body frame."""
    t = np.arange(num_frames)[:, None]
    period = rng.uniform(*_SWAY_PERIOD_FRAMES, size=(1, 3))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(1, 3))
    amplitude = rng.uniform(*_SWAY_SHARE, size=(1, 3)) * np.asarray(_SWAY_M)
    return (amplitude * np.sin(2.0 * np.pi * t / period + phase))[:, None, :]
