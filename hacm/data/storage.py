"""Converted splits on disk (docs/method.md §1.6): a directory of `.npy` files that training maps, never reads.

Layout of a store directory:
  frames.npy        float32 (total_frames, 2, 25, 3), every sample's frames one after the other
  offsets.npy       int64 (samples,)  first row of each sample in frames.npy
  lengths.npy       int32 (samples,)  rows of each sample
  valid_lengths.npy int32 (samples,)  frames with any non-zero value (the loader crops within these)
  labels.npy        int64 (samples,)  0-based class
  names.npy, setup.npy, camera.npy, performer.npy, replication.npy   per-sample metadata
  info.json         dataset, benchmark, split, classes, counts, content_sha256 (frames and metadata)
The frame table is written as a stream (its `.npy` header is fixed up at the end) so a conversion
never holds a whole split in memory, and the directory appears only when complete (atomic rename).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hacm.data.kinect import FRAME_SHAPE

FRAMES_FILE = "frames.npy"
INFO_FILE = "info.json"
_NPY_HEADER_BYTES = 128  # room for any shape; npy v1.0 headers are padded to a multiple of 64
METADATA_FIELDS = ("setup", "camera", "performer", "replication")


class StoreError(ValueError):
    """A store directory that is missing, incomplete or inconsistent."""


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """A version 1.0 `.npy` header of exactly _NPY_HEADER_BYTES for a C-ordered float32 array."""
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape!r}, }}"
    prefix = b"\x93NUMPY\x01\x00"
    room = _NPY_HEADER_BYTES - len(prefix) - 2
    body = text.encode("latin1").ljust(room - 1) + b"\n"
    if len(body) != room:
        raise ValueError(f"shape {shape} does not fit the reserved .npy header")
    return prefix + room.to_bytes(2, "little") + body


@dataclass(frozen=True)
class SampleMeta:
    """What is stored beside a sample's frames."""

    name: str
    label: int
    setup: int = 0
    camera: int = 0
    performer: int = 0
    replication: int = 0


class StoreWriter:
    """Append samples one at a time; `close()` makes the finished store appear atomically."""

    def __init__(self, directory: str | Path, *, info: dict) -> None:
        self.directory = Path(directory)
        self._partial = self.directory.with_name(self.directory.name + ".partial")
        if self._partial.exists():
            shutil.rmtree(self._partial)
        self._partial.mkdir(parents=True)
        self._info = dict(info)
        self._frames = open(self._partial / FRAMES_FILE, "wb")
        self._frames.write(_npy_header((0, *FRAME_SHAPE)))
        self._rows = 0
        self._lengths: list[int] = []
        self._valid: list[int] = []
        self._meta: list[SampleMeta] = []
        self._digest = hashlib.sha256()  # of every sample's frames and metadata, in order: the store's identity

    def __len__(self) -> int:
        return len(self._meta)

    def add(self, frames: np.ndarray, meta: SampleMeta) -> None:
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        if frames.ndim != 4 or frames.shape[1:] != FRAME_SHAPE or len(frames) == 0:
            raise ValueError(f"{meta.name}: frames must be (n>0, 2, 25, 3), got {frames.shape}")
        data = frames.tobytes()
        self._frames.write(data)
        self._digest.update(repr(meta).encode())
        self._digest.update(data)
        self._lengths.append(len(frames))
        self._valid.append(int(frames.reshape(len(frames), -1).any(axis=1).sum()))
        self._meta.append(meta)
        self._rows += len(frames)

    def close(self) -> Path:
        self._frames.seek(0)
        self._frames.write(_npy_header((self._rows, *FRAME_SHAPE)))
        self._frames.close()
        lengths = np.asarray(self._lengths, dtype=np.int32)
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)[:-1]]).astype(np.int64)
        arrays = {
            "offsets": offsets,
            "lengths": lengths,
            "valid_lengths": np.asarray(self._valid, dtype=np.int32),
            "labels": np.asarray([m.label for m in self._meta], dtype=np.int64),
            "names": np.asarray([m.name for m in self._meta], dtype=np.str_),
        }
        for field in METADATA_FIELDS:
            arrays[field] = np.asarray([getattr(m, field) for m in self._meta], dtype=np.int16)
        for key, array in arrays.items():
            np.save(self._partial / f"{key}.npy", array)
        info = {**self._info, "samples": len(self._meta), "frames": self._rows,
                "content_sha256": self._digest.hexdigest()}
        (self._partial / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        if self.directory.exists():
            shutil.rmtree(self.directory)
        os.replace(self._partial, self.directory)
        return self.directory

    def abort(self) -> None:
        self._frames.close()
        shutil.rmtree(self._partial, ignore_errors=True)


class SkeletonStore:
    """A converted split opened for reading: the frame table is memory-mapped, metadata is loaded."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        info_path = self.directory / INFO_FILE
        if not info_path.is_file():
            raise StoreError(f"{self.directory} is not a converted split (no {INFO_FILE}); run hacm.prepare")
        try:
            self.info = json.loads(info_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise StoreError(f"{info_path} is not readable JSON ({error}); run hacm.prepare again") from None
        if not isinstance(self.info, dict):
            raise StoreError(f"{info_path} is not a store description (a JSON object); run hacm.prepare again")
        try:
            self.frames = np.load(self.directory / FRAMES_FILE, mmap_mode="r")
            self.offsets = np.load(self.directory / "offsets.npy")
            self.lengths = np.load(self.directory / "lengths.npy")
            self.valid_lengths = np.load(self.directory / "valid_lengths.npy")
            self.labels = np.load(self.directory / "labels.npy")
            self.names = np.load(self.directory / "names.npy")
            self.metadata = {f: np.load(self.directory / f"{f}.npy") for f in METADATA_FIELDS}
        except (OSError, ValueError) as error:
            raise StoreError(f"{self.directory}: unreadable store ({error})") from None
        if self.frames.shape[1:] != FRAME_SHAPE or len(self.frames) != int(self.lengths.sum()):
            raise StoreError(f"{self.directory}: frames.npy does not match lengths.npy")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return int(self.info["num_classes"])

    @property
    def identity(self) -> dict:
        """What a checkpoint or cache made from this store records, to be reused only with the same data:
        the content digest written by the conversion (None for stores written before it had one, which
        then match nothing) and the counts."""
        return {"content_sha256": self.info.get("content_sha256"), "samples": len(self),
                "frames": int(len(self.frames))}

    def sequence(self, index: int) -> np.ndarray:
        """The stored frames of one sample, (length, 2, 25, 3), as a view of the map."""
        start = int(self.offsets[index])
        return self.frames[start : start + int(self.lengths[index])]

    def release_pages(self) -> None:
        """Drop the mapped pages from this process's resident set (they stay in the page cache).

        Iterating a split touches every page of the map; without this, resident memory would grow
        to the size of the split even though nothing is copied.
        """
        handle = getattr(self.frames, "_mmap", None)
        if handle is not None and hasattr(mmap, "MADV_DONTNEED"):
            handle.madvise(mmap.MADV_DONTNEED)
