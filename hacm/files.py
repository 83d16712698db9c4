"""Small file primitives shared by every layer (torch-free)."""

from __future__ import annotations

import hashlib
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
