"""The Kinect v2 skeleton of NTU RGB+D and PKU-MMD (docs/method.md §1): joints, bones, trunk, frame shape.

The one home of the skeleton convention: readers, stores, normalisation, the synthetic generator, the
model's hierarchy and the figures all read it. Indices are 0-based (the official documentation counts
joints from 1).
"""

from __future__ import annotations

NUM_JOINTS = 25
NUM_BODIES = 2  # bodies kept per frame (NTU's denoising keeps at most two; PKU-MMD files hold two)
COORDS = 3
FRAME_SHAPE = (NUM_BODIES, NUM_JOINTS, COORDS)  # one frame of a store

(SPINE_BASE, SPINE_MID, NECK, HEAD,
 L_SHOULDER, L_ELBOW, L_WRIST, L_HAND,
 R_SHOULDER, R_ELBOW, R_WRIST, R_HAND,
 L_HIP, L_KNEE, L_ANKLE, L_FOOT,
 R_HIP, R_KNEE, R_ANKLE, R_FOOT,
 SPINE_SHOULDER, L_HAND_TIP, L_THUMB, R_HAND_TIP, R_THUMB) = range(NUM_JOINTS)

JOINT_NAMES = (
    "spine base", "spine mid", "neck", "head", "L shoulder", "L elbow", "L wrist", "L hand",
    "R shoulder", "R elbow", "R wrist", "R hand", "L hip", "L knee", "L ankle", "L foot",
    "R hip", "R knee", "R ankle", "R foot", "spine shoulder", "L hand tip", "L thumb", "R hand tip", "R thumb",
)

# The 24 bones, as joint pairs.
BONES = (
    (SPINE_BASE, SPINE_MID), (SPINE_MID, SPINE_SHOULDER), (NECK, SPINE_SHOULDER), (HEAD, NECK),
    (L_SHOULDER, SPINE_SHOULDER), (L_ELBOW, L_SHOULDER), (L_WRIST, L_ELBOW), (L_HAND, L_WRIST),
    (R_SHOULDER, SPINE_SHOULDER), (R_ELBOW, R_SHOULDER), (R_WRIST, R_ELBOW), (R_HAND, R_WRIST),
    (L_HIP, SPINE_BASE), (L_KNEE, L_HIP), (L_ANKLE, L_KNEE), (L_FOOT, L_ANKLE),
    (R_HIP, SPINE_BASE), (R_KNEE, R_HIP), (R_ANKLE, R_KNEE), (R_FOOT, R_ANKLE),
    (L_HAND_TIP, L_THUMB), (L_THUMB, L_HAND), (R_HAND_TIP, R_THUMB), (R_THUMB, R_HAND),
)

# The trunk (spine, shoulders, hips; 1-based 1 2 5 9 13 17 21): the parents of the spatial hierarchy;
# the other 18 joints are HA-CM's limb tokens.
TRUNK_JOINTS = (SPINE_BASE, SPINE_MID, L_SHOULDER, R_SHOULDER, L_HIP, R_HIP, SPINE_SHOULDER)

# The joint every sequence is centred on (its position in the first frame), as the release's
# seq_transformation does with joint 2.
CENTRE_JOINT = SPINE_MID
