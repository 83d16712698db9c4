"""The raw files' text: NTU `.skeleton` files (Kinect v2 columns at the printed precision) and missing-skeleton
lists, PKU-MMD skeleton, label and split files; written as ASCII."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hacm.data.kinect import NUM_JOINTS, SPINE_BASE, SPINE_SHOULDER
from hacm.data.ntu import JOINT_VALUES as NTU_VALUES_PER_JOINT

# Fields of the body line that the pipeline does not use: clipped edges, hand-left confidence and
# state, hand-right confidence and state, restricted; after them lean x, lean y and the tracking state.
_BODY_LINE_FLAGS = "0 1 1 1 1 0"
_TRACKED = 2
_ORIENTATION_WXYZ = (1.0, 0.0, 0.0, 0.0)
# Kinect v2 intrinsics, roughly: depth 512x424, colour 1920x1080.
_DEPTH_FOCAL, _DEPTH_CENTRE = 365.0, (256.0, 212.0)
_COLOUR_FOCAL, _COLOUR_CENTRE = 1060.0, (960.0, 540.0)
_SIGNIFICANT_DIGITS = 7
_PKU_DECIMALS = 6


def round_significant(values: np.ndarray, digits: int = _SIGNIFICANT_DIGITS) -> np.ndarray:
    """Round to `digits` significant digits, the precision that `%.{digits}G` prints."""
    values = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(values)
    exponent = np.floor(np.log10(np.where(magnitude > 0.0, magnitude, 1.0)))
    factor = 10.0 ** (digits - 1 - exponent)
    return np.round(values * factor) / factor + 0.0  # + 0.0 turns -0.0 into 0.0



def kinect_columns(xyz: np.ndarray) -> np.ndarray:
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


def write_text(path: Path, text: str, *, crlf: bool = False) -> None:
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes(text.encode("ascii"))


def missing_list_text(names: list[str]) -> str:
    """The official layout: two header sentences, a blank line, then one name per line."""
    header = (
        f'{len(names)} of the captured samples in the synthetic "NTU RGB+D" dataset have missing or '
        "incomplete skeleton data.\n"
        "If you are working on skeleton-based analysis, please ignore these files in your training and "
        "testing procedures.\n\n"
    )
    return header + "".join(f"{name}\n" for name in names)


@dataclass(frozen=True)
class PkuAction:
    label: int  # 0-based class index
    start: int  # first frame, 0-based
    end: int  # last frame, inclusive
    confidence: int



def pku_text(performer: np.ndarray, partner: np.ndarray, present: np.ndarray) -> str:
    """One line per frame: 2 bodies x 25 joints x xyz with %f; an absent partner is zeros."""
    values = np.concatenate([performer.reshape(len(performer), -1), partner.reshape(len(partner), -1)], axis=1)
    values[~present, NUM_JOINTS * 3:] = 0.0
    values = np.round(values, _PKU_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    line = " ".join(["%f"] * values.shape[1]) + "\n"
    return (line * len(values)) % tuple(values.ravel().tolist())


def pku_labels_text(actions: list[PkuAction]) -> str:
    # 1-based labels; frame indices 0-based and inclusive, as hacm.data.pku reads them. Every interval
    # has idle frames on both sides, so a 1-based reading also stays inside the video.
    return "".join(f"{a.label + 1},{a.start},{a.end},{a.confidence}\n" for a in actions)


def pku_split_text(train: list[str], test: list[str]) -> str:
    """A split file in the official layout (training ids on line 2, test ids on line 4; its spelling)."""
    return f"Training videos: \n{', '.join(train)}\nValidataion videos: \n{', '.join(test)}\n"
