"""PKU-MMD sessions: long recordings of labelled actions (the performer turns to a partner for interactions),
seen from three views, and a phase's folder with its split files."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from hacm.data.kinect import NUM_JOINTS
from hacm.data.synthetic.body import DOF_NAMES, PAIR_SEPARATION_M, QUARTER_TURN, SUBJECT_SCALE, place, skeleton_from_dofs
from hacm.data.synthetic.camera import camera_frames
from hacm.data.synthetic.classes import NTU60_NUM_CLASSES, TWO_PERSON_CLASSES
from hacm.data.synthetic.geometry import smoothstep
from hacm.data.synthetic.layout import (
    PKU_SALT,
    PKU_SESSIONS,
    PKU_SPLIT_FILES,
    PKU_SUBJECTS,
    PKU_TRAIN_SUBJECTS,
    PKU_TRAIN_VIEWS,
    PKU_VIEW_YAW_DEG,
    PKU_VIEWS,
    pku_video_id,
)
from hacm.data.synthetic.motion import rest_dofs, sequence_dofs, sway
from hacm.data.synthetic.text import PkuAction, pku_labels_text, pku_split_text, pku_text, write_text

_PKU_VIEW_YAW_JITTER_DEG = 5.0
_PKU_ACTION_FRAMES = (40, 100)
_PKU_GAP_FRAMES = (10, 30)
_PKU_EDGE_FRAMES = (15, 30)
_PKU_EXTRA_ACTIONS = (0, 1)  # random repeats on top of the session's share of the classes
_PKU_TURN_FRAMES = 12  # turning towards (and away from) the partner, outside the labelled interval
_PKU_PARTNER_MARGIN = 4  # frames the partner is visible before and after an interaction


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
    scale = float(rng.uniform(*SUBJECT_SCALE))
    dofs = rest_dofs(num_frames, rng)
    heading = np.zeros(num_frames)
    partner = np.zeros((num_frames, NUM_JOINTS, 3))
    present = np.zeros(num_frames, dtype=bool)
    turn = -QUARTER_TURN  # the performer turns to face the partner, who stands on the +x side
    for action in actions:
        frames = slice(action.start, action.end + 1)
        length = action.end - action.start + 1
        people = sequence_dofs(action.label, length, rng)
        for key in DOF_NAMES:
            dofs[key][frames] += people[0][key]
        if len(people) == 2:
            before = np.arange(action.start - _PKU_TURN_FRAMES - _PKU_PARTNER_MARGIN, action.start)
            after = np.arange(action.end + 1, action.end + 1 + _PKU_TURN_FRAMES + _PKU_PARTNER_MARGIN)
            heading[frames] = turn
            heading[before] = turn * smoothstep((before - before[0]) / _PKU_TURN_FRAMES)
            heading[after] = turn * smoothstep((after[-1] - after) / _PKU_TURN_FRAMES)
            visible = slice(action.start - _PKU_PARTNER_MARGIN, action.end + 1 + _PKU_PARTNER_MARGIN)
            partner_dofs = rest_dofs(length + 2 * _PKU_PARTNER_MARGIN, rng)
            acting = slice(_PKU_PARTNER_MARGIN, _PKU_PARTNER_MARGIN + length)
            for key in DOF_NAMES:
                partner_dofs[key][acting] += people[1][key]
            body = skeleton_from_dofs(partner_dofs, scale=float(rng.uniform(*SUBJECT_SCALE)))
            separation = rng.uniform(*PAIR_SEPARATION_M)
            partner[visible] = place(body, heading=-turn, position=np.array([separation, 0.0, 0.0]))
            present[visible] = True
    performer = skeleton_from_dofs(dofs, scale=scale) + sway(num_frames, rng)
    return place(performer, heading=heading, position=np.zeros(3)), partner, present


def write_pku_phase(phase_dir: Path, *, phase: int, seed: int, progress: Callable[[Iterable], Iterable] = iter) -> dict:
    """Write one PKU-MMD phase: skeleton and label files per video, and the two split files."""
    for sub in ("skeleton", "label", "split"):
        (phase_dir / sub).mkdir(parents=True, exist_ok=True)
    videos, num_actions = [], 0
    sessions = [(subject, session) for subject in PKU_SUBJECTS for session in PKU_SESSIONS]
    for subject, session in progress(sessions):
        subject_rng = np.random.default_rng([seed, PKU_SALT, phase, subject])
        subject_order = subject_rng.permutation(NTU60_NUM_CLASSES)  # the subject's sessions share out the classes
        rng = np.random.default_rng([seed, PKU_SALT, phase, subject, session])
        labels = _pku_session_labels(subject_order, session, rng)
        num_frames, actions = _pku_schedule(labels, rng)
        performer, partner, present = _pku_scenes(actions, num_frames, rng)
        view_seed = int(rng.integers(2**63))
        for view in PKU_VIEWS:
            view_rng = np.random.default_rng([view_seed, PKU_VIEWS.index(view)])
            yaw = PKU_VIEW_YAW_DEG[view] + view_rng.uniform(-_PKU_VIEW_YAW_JITTER_DEG, _PKU_VIEW_YAW_JITTER_DEG)
            camera = camera_frames([performer, partner], yaw_deg=yaw, two_people=False, rng=view_rng)
            video = f"{pku_video_id(phase, subject, session)}-{view}"
            write_text(phase_dir / "skeleton" / f"{video}.txt", pku_text(camera[0], camera[1], present))
            write_text(phase_dir / "label" / f"{video}.txt", pku_labels_text(actions))
            videos.append((video, subject, view))
            num_actions += len(actions)
    splits = {
        "cross-subject": [subject in PKU_TRAIN_SUBJECTS for _, subject, _ in videos],
        "cross-view": [view in PKU_TRAIN_VIEWS for _, _, view in videos],
    }
    for split, is_train in splits.items():
        train = [video for (video, _, _), keep in zip(videos, is_train) if keep]
        test = [video for (video, _, _), keep in zip(videos, is_train) if not keep]
        write_text(phase_dir / "split" / PKU_SPLIT_FILES[phase][split], pku_split_text(train, test))
    return {"videos": len(videos), "actions": num_actions}
