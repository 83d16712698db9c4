"""Reader for NTU RGB+D 60 / 120 `.skeleton` files (docs/method.md §1.1).

The file is a stream of whitespace-separated numbers whose structure is given by the counts it
contains (frames, bodies per frame, joints per body). We split the whole file once and walk the
counts, converting only the x y z tokens to floats: that is where the time goes, and the other nine
joint columns are not used. Body ids stay strings: they are 17-digit integers that collide as floats.
"""

from __future__ import annotations

import io
import operator
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hacm.data.denoise import select_actors
from hacm.data.normalise import normalise_sequence
from hacm.data.kinect import NUM_JOINTS
from hacm.data.raw import RawBody, RawSkeleton, SkeletonFormatError, store_coordinates

BODY_HEADER_VALUES = 10  # id, clipped edges, hands (4), restricted, lean x/y, tracking state
JOINT_VALUES = 12  # xyz, depth xy, colour xy, orientation wxyz, tracking state
NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
# Saved by some Windows editors. Dropped before either parser sees the text: pandas skips it only at the
# start of its input (not of a file inside a batch), and the token parser would read it as part of the
# frame count (a file with a BOM and tabs reaches the token parser).
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class NtuCodes:
    """The five 1-based codes in an NTU sample name."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int


def parse_ntu_name(name: str) -> NtuCodes:
    """`S001C002P003R004A005` (with or without `.skeleton`) -> its codes."""
    match = NTU_NAME.fullmatch(Path(name).name.removesuffix(".skeleton"))
    if match is None:
        raise ValueError(f"not an NTU sample name (SsssCcccPpppRrrrAaaa): {name!r}")
    return NtuCodes(*(int(group) for group in match.groups()))


def _count(tokens: list[bytes], position: int, what: str) -> int:
    """An integer count at a token position, or a SkeletonFormatError naming what was expected."""
    if position >= len(tokens):
        raise SkeletonFormatError(f"truncated: file ends where the {what} was expected")
    try:
        value = int(tokens[position])
    except ValueError:
        raise SkeletonFormatError(
            f"non-numeric text {tokens[position][:20]!r} where the {what} was expected"
        ) from None
    if value < 0:
        raise SkeletonFormatError(f"negative {what}: {value}")
    return value


def _walk_structure(tokens: list[bytes]) -> tuple[int, list[int], list[bytes], list[int]]:
    """Follow the counts through the token stream.

    Returns the declared frame count and, for each (frame, body) record in file order, the valid-frame
    index, the body id token and the token position of its first joint value.
    """
    if not tokens:
        raise SkeletonFormatError("empty file")
    num_frames = _count(tokens, 0, "frame count")
    position = 1
    record_frames: list[int] = []
    record_ids: list[bytes] = []
    record_starts: list[int] = []
    valid_frame = -1
    joint_block = NUM_JOINTS * JOINT_VALUES
    for frame in range(num_frames):
        num_bodies = _count(tokens, position, f"body count of frame {frame + 1}")
        position += 1
        if num_bodies:
            valid_frame += 1
        for body in range(num_bodies):
            if position + BODY_HEADER_VALUES >= len(tokens):
                raise SkeletonFormatError(f"truncated in frame {frame + 1} of {num_frames}")
            body_id = tokens[position]
            num_joints = _count(tokens, position + BODY_HEADER_VALUES, "joint count")
            if num_joints != NUM_JOINTS:
                raise SkeletonFormatError(
                    f"frame {frame + 1} body {body + 1} has {num_joints} joints, expected {NUM_JOINTS}"
                )
            start = position + BODY_HEADER_VALUES + 1
            position = start + joint_block
            if position > len(tokens):
                raise SkeletonFormatError(f"truncated in frame {frame + 1} of {num_frames}")
            record_frames.append(valid_frame)
            record_ids.append(body_id)
            record_starts.append(start)
    if position != len(tokens):
        raise SkeletonFormatError(
            f"{len(tokens) - position} values after the last of {num_frames} frames "
            "(a line with the wrong number of values?)"
        )
    return num_frames, record_frames, record_ids, record_starts


def parse_numbers(tokens: tuple[bytes, ...]) -> np.ndarray:
    """float64 values of numeric tokens; SkeletonFormatError naming the first bad one."""
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(token for token in tokens if not _is_number(token))
        raise SkeletonFormatError(f"non-numeric text {bad[:20]!r}") from None


def _is_number(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _xyz_values(tokens: list[bytes], starts: list[int]) -> np.ndarray:
    """float32 (records, 25, 3) from the first three values of every joint line."""
    if not starts:
        return np.zeros((0, NUM_JOINTS, 3), np.float32)
    offsets = (np.arange(NUM_JOINTS)[:, None] * JOINT_VALUES + np.arange(3)[None, :]).ravel()
    positions = (np.asarray(starts)[:, None] + offsets[None, :]).ravel().tolist()
    values = store_coordinates(parse_numbers(operator.itemgetter(*positions)(tokens)))
    return values.reshape(len(starts), NUM_JOINTS, 3)


def _assemble(name: str, num_frames: int, frames: np.ndarray, ids: list[str], joints: np.ndarray) -> RawSkeleton:
    """Group (frame, body) records by body id, in order of first appearance."""
    order: dict[str, list[int]] = {}
    for record, body_id in enumerate(ids):
        order.setdefault(body_id, []).append(record)
    bodies = {
        body_id: RawBody(body_id=body_id, frames=frames[records], joints=joints[records])
        for body_id, records in order.items()
    }
    num_valid = int(frames[-1]) + 1 if len(frames) else 0
    return RawSkeleton(name=name, num_frames=num_frames, num_valid_frames=num_valid, bodies=bodies)


def _parse_strict(data: bytes, name: str) -> RawSkeleton:
    """Token by token: accepts any whitespace layout and names the first problem it meets."""
    tokens = data.split()
    num_frames, record_frames, record_ids, record_starts = _walk_structure(tokens)
    joints = _xyz_values(tokens, record_starts)
    ids = [token.decode("ascii", "replace") for token in record_ids]
    return _assemble(name, num_frames, np.asarray(record_frames, dtype=np.int64), ids, joints)


def _read_table(data: bytes) -> np.ndarray | None:
    """The first three values of every line (NaN where a line has fewer) by pandas' C parser; None when
    the text is not space-separated lines of at most twelve values."""
    try:
        return pd.read_csv(
            io.BytesIO(data), sep=" ", header=None, names=range(JOINT_VALUES), usecols=(0, 1, 2),
            dtype=np.float64, engine="c", skip_blank_lines=False, keep_default_na=False, na_values=[""],
        ).to_numpy()
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None


def _parse_fast(data: bytes, name: str) -> RawSkeleton | None:
    """Line by line with pandas' C parser, for well-formed files (one record per line, single spaces).

    Returns None whenever the file is not exactly of that form; the strict parser then decides. Only
    the first three columns are converted: counts, body ids (re-read as text) and x y z.
    """
    table = _read_table(data)
    return None if table is None else _parse_table(table, data, name)


def _parse_table(table: np.ndarray, data: bytes, name: str) -> RawSkeleton | None:
    """The skeleton from the table of a file's lines (`_read_table`); None when the counts do not fit."""
    first = table[:, 0].tolist()
    single = np.isnan(table[:, 1]).tolist()  # count lines hold one value

    def count(row: int) -> int | None:
        if row >= len(first) or not single[row] or not first[row].is_integer() or first[row] < 0:
            return None
        return int(first[row])

    num_frames = count(0)
    if num_frames is None:
        return None
    row, valid_frame = 1, -1
    record_frames, header_rows = [], []
    for _ in range(num_frames):
        num_bodies = count(row)
        if num_bodies is None:
            return None
        row += 1
        valid_frame += num_bodies > 0
        for _ in range(num_bodies):
            if count(row + 1) != NUM_JOINTS or single[row]:
                return None
            header_rows.append(row)
            record_frames.append(valid_frame)
            row += 2 + NUM_JOINTS
    if row != len(first):
        return None
    rows = np.asarray(header_rows, dtype=np.int64)
    joints = table[(rows[:, None] + 2 + np.arange(NUM_JOINTS)[None, :]).reshape(-1)] if len(rows) else table[:0]
    try:
        joints = store_coordinates(joints)
    except SkeletonFormatError:
        return None
    line_starts = np.concatenate([[0], np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n")) + 1])
    ids = [data[start : start + 64].split(None, 1)[0].decode("ascii", "replace") for start in line_starts[rows].tolist()]
    xyz = joints.reshape(len(rows), NUM_JOINTS, 3)
    return _assemble(name, num_frames, np.asarray(record_frames, dtype=np.int64), ids, xyz)


def parse_skeleton_text(data: bytes, *, name: str) -> RawSkeleton:
    """Parse the bytes of a `.skeleton` file (CRLF or LF, any whitespace, `E` exponents, a UTF-8 BOM)."""
    data = data.removeprefix(UTF8_BOM)
    return _parse_fast(data, name) or _parse_strict(data, name)


def _lines(data: bytes) -> int:
    return data.count(b"\n") + (not data.endswith(b"\n"))


def parse_skeleton_texts(texts: list[tuple[bytes, str]]) -> list[RawSkeleton | SkeletonFormatError]:
    """Many files' bytes (with their names) parsed at once: one call of the C parser for all of them,
    whose set-up costs about as much as parsing a small file. A file the shared table cannot place is
    parsed on its own, as `parse_skeleton_text` does; a bad file's entry is its SkeletonFormatError."""
    texts = [(data.removeprefix(UTF8_BOM), name) for data, name in texts]
    lines = [_lines(data) for data, _ in texts]
    table = _read_table(b"".join(data if data.endswith(b"\n") else data + b"\n" for data, _ in texts))
    shared = table is not None and len(table) == sum(lines)  # else quotes or lone CRs merged or split lines
    results: list[RawSkeleton | SkeletonFormatError] = []
    start = 0
    for (data, name), count in zip(texts, lines):
        try:
            parsed = _parse_table(table[start : start + count], data, name) if shared else _parse_fast(data, name)
            results.append(parsed or _parse_strict(data, name))
        except SkeletonFormatError as error:
            results.append(error)
        start += count
    return results


def skeleton_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise SkeletonFormatError(f"unreadable: {error.strerror or error}") from None


def read_skeleton(path: str | Path) -> RawSkeleton:
    """Read one `.skeleton` file: every body id with its frames and joints."""
    path = Path(path)
    return parse_skeleton_text(skeleton_bytes(path), name=path.name.removesuffix(".skeleton"))


def load_sample(path: str | Path) -> np.ndarray:
    """One NTU sample as float32 (frames, 2, 25, 3): denoised, two actors selected, normalised."""
    return sample_from_skeleton(read_skeleton(path))


def sample_from_skeleton(raw: RawSkeleton) -> np.ndarray:
    return normalise_sequence(select_actors(raw))
