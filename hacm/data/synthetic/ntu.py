"""NTU RGB+D performances: the bodies of every `.skeleton` file (performers, spurious bodies, empty frames)
and the NTU folder with its missing-skeleton lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from hacm.benchmarks import DATASETS
from hacm.data.kinect import NUM_JOINTS
from hacm.data.ntu import parse_ntu_name
from hacm.data.splits import is_ntu60_sample
from hacm.data.synthetic.body import DOF_NAMES, PAIR_SEPARATION_M, QUARTER_TURN, SUBJECT_SCALE, place, skeleton_from_dofs
from hacm.data.synthetic.camera import JOINT_NOISE_M, add_joint_noise, camera_frames
from hacm.data.synthetic.classes import NUM_CLASSES
from hacm.data.synthetic.layout import (
    DATASET_SALT,
    NTU_CAMERA_YAW_DEG,
    NTU_FRAMES,
    NTU_SKELETON_DIR,
    ntu_performance_rng,
    ntu_sample_names,
    performer_scale,
)
from hacm.data.synthetic.motion import rest_dofs, sequence_dofs, sway
from hacm.data.synthetic.text import format_ntu_skeleton, kinect_columns, missing_list_text, write_text

_PERFORMANCE_SCALE_JITTER = 0.02
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


def _ntu_people(label: int, performer: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The scene joints (T, 25, 3) of each person of one performance (one, or two facing each other)."""
    num_frames = int(rng.integers(NTU_FRAMES[0], NTU_FRAMES[1] + 1))
    people_dofs = sequence_dofs(label, num_frames, rng)
    scales = [performer_scale(performer) * (1.0 + rng.uniform(-_PERFORMANCE_SCALE_JITTER, _PERFORMANCE_SCALE_JITTER))]
    if len(people_dofs) == 2:
        scales.append(float(rng.uniform(*SUBJECT_SCALE)))
    separation = rng.uniform(*PAIR_SEPARATION_M)
    scenes = []
    for person, (dofs, scale) in enumerate(zip(people_dofs, scales)):
        rest = rest_dofs(num_frames, rng)
        body = skeleton_from_dofs({k: rest[k] + dofs[k] for k in DOF_NAMES}, scale=scale)
        body += sway(num_frames, rng)
        if len(people_dofs) == 1:
            scenes.append(place(body, heading=0.0, position=np.zeros(3)))
        else:  # face each other along the scene x axis: person 0 looks towards +x, person 1 towards -x
            side = -1.0 if person == 0 else 1.0
            heading = QUARTER_TURN * side
            scenes.append(place(body, heading=heading, position=np.array([side * separation / 2, 0.0, 0.0])))
    return scenes


def _short_lived_body(num_frames: int, rng) -> tuple[int, np.ndarray]:
    """A spurious body seen for at most 11 frames: a person-like ghost somewhere in the room."""
    length = int(rng.integers(_SHORT_BODY_FRAMES[0], min(_SHORT_BODY_FRAMES[1], num_frames) + 1))
    start = int(rng.integers(0, num_frames - length + 1))
    body = skeleton_from_dofs(rest_dofs(length, rng), scale=float(rng.uniform(*SUBJECT_SCALE)))
    position = np.array([rng.uniform(*limits) for limits in _GHOST_POSITION_M])
    body = place(body, heading=rng.uniform(-np.pi, np.pi), position=position)
    return start, add_joint_noise(body, rng)


def _furniture_body(num_frames: int, rng) -> tuple[int, np.ndarray]:
    """A wide, flat 'body' (a table or sofa taken for a person): x-range far above 0.8 x its y-range."""
    length = int(rng.integers(min(_FURNITURE_MIN_FRAMES, num_frames), num_frames + 1))
    start = int(rng.integers(0, num_frames - length + 1))
    width, height = rng.uniform(*_FURNITURE_WIDTH_M), rng.uniform(*_FURNITURE_HEIGHT_M)
    centre = np.array([rng.uniform(*limits) for limits in _FURNITURE_CENTRE_M])
    half_size = np.array([width, height, _FURNITURE_DEPTH_M]) / 2
    layout = rng.uniform(-half_size, half_size, size=(NUM_JOINTS, 3))
    jitter = rng.normal(scale=JOINT_NOISE_M, size=(length, NUM_JOINTS, 3))
    return start, centre + layout + jitter


def _distinct_body_ids(count: int, rng) -> list[str]:
    low, high = _BODY_ID_COUNTER
    counters = low + rng.choice(high - low, size=count, replace=False)
    return [str(_BODY_ID_BASE + int(counter)) for counter in counters]


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
    actors = camera_frames(scenes, yaw_deg=NTU_CAMERA_YAW_DEG[parsed.camera], two_people=two_people, rng=view_rng)
    num_frames = len(actors[0])

    tracks: list[tuple[int, np.ndarray]] = [(0, actor) for actor in actors]  # (first frame, joints)
    if view_rng.random() < _SHORT_BODY_PROBABILITY:
        tracks.append(_short_lived_body(num_frames, view_rng))
    if view_rng.random() < _FURNITURE_PROBABILITY:
        tracks.append(_furniture_body(num_frames, view_rng))
    body_ids = _distinct_body_ids(len(tracks), view_rng)

    frames: list[list[tuple[str, np.ndarray]]] = [[] for _ in range(num_frames)]
    for body_id, (start, joints) in zip(body_ids, tracks):
        for offset, columns in enumerate(kinect_columns(joints)):
            frames[start + offset].append((body_id, columns))

    if view_rng.random() < _EMPTY_EDGE_PROBABILITY:
        leading, trailing = view_rng.integers(_EMPTY_EDGE_FRAMES[0] - 1, _EMPTY_EDGE_FRAMES[1] + 1, size=2)
        frames = [[] for _ in range(leading)] + frames + [[] for _ in range(trailing)]
    return frames


def _choose_fraction(names: list[str], fraction: float, rng) -> set[str]:
    count = max(1, round(fraction * len(names)))
    return {names[i] for i in rng.choice(len(names), size=count, replace=False)}


def write_ntu(ntu_dir: Path, *, seed: int, progress: Callable[[Iterable], Iterable] = iter) -> dict:
    """Write every synthetic NTU file and the missing-skeleton list; return their counts."""
    skeleton_dir = ntu_dir / NTU_SKELETON_DIR
    skeleton_dir.mkdir(parents=True, exist_ok=True)
    names = ntu_sample_names()
    dataset_rng = np.random.default_rng([seed, DATASET_SALT])
    missing = _choose_fraction(names, _MISSING_FRACTION, dataset_rng)
    crlf = _choose_fraction(names, _CRLF_FRACTION, dataset_rng)
    for name in progress(names):
        frames = synthesize_ntu_bodies(name, ntu_performance_rng(seed, name))
        if name in missing:  # the sensor lost the performer in every frame
            frames = [[] for _ in frames]
        write_text(skeleton_dir / f"{name}.skeleton", format_ntu_skeleton(frames), crlf=name in crlf)
    # Both official lists, as the real downloads have them: NTU-60's names only its own samples.
    write_text(ntu_dir / DATASETS["ntu60"].missing_list, missing_list_text(sorted(filter(is_ntu60_sample, missing))))
    write_text(ntu_dir / DATASETS["ntu120"].missing_list, missing_list_text(sorted(missing)))
    return {"files": len(names), "missing_skeletons": len(missing)}

