"""Which recordings the dataset holds: NTU setups, performers, cameras and sample names; PKU-MMD subjects,
sessions, views and split files; and the seed of every generator stream."""

from __future__ import annotations

import numpy as np

from hacm.benchmarks import BENCHMARKS
from hacm.data.ntu import parse_ntu_name
from hacm.data.splits import NTU60_SETUPS
from hacm.data.synthetic.body import SUBJECT_SCALE
from hacm.data.synthetic.classes import NTU60_NUM_CLASSES, NUM_CLASSES

# Seeds: (seed, salt, ids...) so that different streams never share a generator.
NTU_SALT, PKU_SALT, DATASET_SALT, PERFORMER_SALT = 1, 2, 3, 4

# NTU layout: enough performers, cameras and setups for the x-sub, x-view and x-set rules.
# Setups 1-4 belong to NTU-60 (performers 1-8: train 1 2 4 5 8, test 3 6 7); setups 18-19 only to
# NTU-120 (performers 45 46 train, 48 51 test under its x-sub; setup 18 train, 19 test under x-set).
NTU_SETUP_PERFORMERS: dict[int, tuple[int, ...]] = {1: (1, 3), 2: (2, 6), 3: (4, 7), 4: (5, 8), 18: (45, 48), 19: (46, 51)}
NTU_CAMERAS = (1, 2, 3)
NTU_REPLICATIONS = (1, 2)
NTU_CAMERA_YAW_DEG = {1: 0.0, 2: 30.0, 3: -30.0}
NTU_FRAMES = (40, 100)
NTU_DIR, NTU_SKELETON_DIR = "ntu", "nturgb+d_skeletons"

# PKU-MMD layout.
# Four training and four test subjects under x-sub: 75 test samples (two test subjects, version 4) left a
# 16-point difference between encoders with a 95 % interval that reached zero. Every subject's recordings
# come from its own generator, so adding subjects changes no other subject's files.
PKU_SUBJECTS = (1, 2, 3, 4, 5, 6, 7, 8)
PKU_SESSIONS = (1, 2)  # recordings per subject; together they hold every class
PKU_VIEWS = ("L", "M", "R")
PKU_VIEW_YAW_DEG = {"L": 45.0, "M": 0.0, "R": -45.0}
PKU_TRAIN_SUBJECTS = (1, 2, 3, 4)
PKU_TRAIN_VIEWS = ("M", "R")
PKU_PHASE_DIRS = {1: "pku1", 2: "pku2"}
PKU_SPLIT_FILES = {  # the names of the official download (the benchmark registry's first)
    phase: {"cross-subject": BENCHMARKS[f"pku{phase}-xsub"].split_files[0],
            "cross-view": BENCHMARKS[f"pku{phase}-xview"].split_files[0]} for phase in (1, 2)
}


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
    return float(np.random.default_rng([PERFORMER_SALT, performer]).uniform(*SUBJECT_SCALE))


def ntu_performance_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of one performance: shared by the camera views of (setup, performer, replication, action)."""
    parsed = parse_ntu_name(name)
    return np.random.default_rng([seed, NTU_SALT, parsed.setup, parsed.performer, parsed.replication, parsed.action])


def pku_video_id(phase: int, subject: int, session: int) -> str:
    """Phase I ids are 4 digits (`0003`), phase II ids `A02N01`; the view letter is appended."""
    if phase == 1:
        return f"{(subject - 1) * len(PKU_SESSIONS) + session:04d}"
    return f"A{subject:02d}N{session:02d}"
