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

The modules, in the order the data is made:

classes:   the class names, the motion pieces (or hand circles) of each, the two-person classes.
geometry:  rotations about a coordinate axis and a smooth step.
body:      the stick figure: proportions, degrees of freedom, joints from the DOFs, a person's place.
motion:    the DOFs over time: an action's pieces or circles, the rest pose, sway and time warp.
camera:    the sensor: a scene seen from a randomly placed camera, with smoothed tracking noise.
layout:    which recordings exist (NTU and PKU-MMD ids, views, split files) and the seed of each stream.
text:      the raw files' text: NTU .skeleton and missing lists, PKU-MMD skeleton, label and split files.
ntu:       NTU RGB+D performances and the ntu/ folder.
pku:       PKU-MMD sessions and the pku1/, pku2/ folders.
dataset:   the whole dataset under one folder, and its manifest.
"""

from hacm.data.synthetic.body import skeleton_from_dofs
from hacm.data.synthetic.classes import CLASS_NAMES, NTU60_NUM_CLASSES, NUM_CLASSES, TWO_PERSON_CLASSES
from hacm.data.synthetic.dataset import (
    GENERATOR_VERSION,
    read_manifest,
    synthetic_raw_is_current,
    write_synthetic_raw,
)
from hacm.data.synthetic.layout import (
    NTU_CAMERAS,
    NTU_SKELETON_DIR,
    PKU_PHASE_DIRS,
    PKU_SPLIT_FILES,
    PKU_TRAIN_VIEWS,
    ntu_performance_rng,
    ntu_sample_names,
)
from hacm.data.synthetic.motion import action_dofs
from hacm.data.synthetic.ntu import synthesize_ntu_bodies
from hacm.data.synthetic.pku import write_pku_phase
from hacm.data.synthetic.text import format_ntu_skeleton, pku_split_text

__all__ = [
    "CLASS_NAMES",
    "GENERATOR_VERSION",
    "NTU60_NUM_CLASSES",
    "NTU_CAMERAS",
    "NTU_SKELETON_DIR",
    "NUM_CLASSES",
    "PKU_PHASE_DIRS",
    "PKU_SPLIT_FILES",
    "PKU_TRAIN_VIEWS",
    "TWO_PERSON_CLASSES",
    "action_dofs",
    "format_ntu_skeleton",
    "ntu_performance_rng",
    "ntu_sample_names",
    "pku_split_text",
    "read_manifest",
    "skeleton_from_dofs",
    "synthesize_ntu_bodies",
    "synthetic_raw_is_current",
    "write_pku_phase",
    "write_synthetic_raw",
]
