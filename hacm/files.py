"""Small file primitives shared by every layer (torch-free)."""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Callable
from pathlib import Path


def file_sha256(path: Path, *, chunk_bytes: int = 1 << 20, progress: Callable[[int], object] | None = None) -> str:
    """sha256 of a file's bytes, streamed in chunks; `progress(n)` after each chunk of n bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_bytes):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def write_text_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a sibling `.partial` file, so that a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def files_under(root: Path, pattern: str) -> list[Path]:
    """Files below `root` whose name matches `pattern`, sorted; linked folders are followed (hacm.fetch
    links a dataset folder the user already extracted into the raw folder instead of copying it)."""
    found = []
    for folder, _, names in os.walk(root, followlinks=True):
        found += [Path(folder) / name for name in fnmatch.filter(names, pattern)]
    return sorted(found)
