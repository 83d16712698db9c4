"""Measuring, checking and downloading files: sha256 with a progress bar, size/digest checks, resumable
downloads from a configured URL.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from hacm.fetch.manifest import Archive, ArchiveInvalid, ArchiveMissing
from hacm.files import file_sha256

CHUNK_BYTES = 4 << 20
PROGRESS_MIN_BYTES = 64 << 20
DOWNLOAD_TIMEOUT_S = 60


# ----------------------------------------------------------------------------------------------
# measuring and checking files


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str


def sha256_of(path: Path, *, label: str | None = None) -> FileDigest:
    """Stream the file in chunks; a progress bar for large files (hidden when not on a terminal)."""
    size = path.stat().st_size
    with progress_bar(total=size, label=f"sha256 {label or path.name}") as bar:
        return FileDigest(size=size, sha256=file_sha256(path, chunk_bytes=CHUNK_BYTES, progress=bar.update))


def progress_bar(*, total: int | None, label: str) -> tqdm:
    small = total is not None and total < PROGRESS_MIN_BYTES
    return tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                disable=True if small else None, leave=False)


def check_digest(found: FileDigest, *, name: str, source: Path | str, size: int | None, sha256: str | None,
                 remedy: str) -> None:
    """Raise with expected vs found and what to do; ``source`` is the file or URL the bytes came from."""
    if size is not None and found.size != size:
        raise ArchiveInvalid(
            f"{source} has {found.size} bytes, expected {size} for {name} (incomplete or wrong file); {remedy}"
        )
    if sha256 is not None and found.sha256 != sha256:
        raise ArchiveInvalid(
            f"{source} has sha256 {found.sha256}, expected {sha256} for {name} (corrupt or wrong file); {remedy}"
        )


def replace_remedy(archive: Archive, *, path: Path) -> str:
    return f"delete it and request {archive.name} again at {archive.request_page}, then put it at {path}"


# ----------------------------------------------------------------------------------------------
# downloading


def download(url: str, *, target: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> FileDigest:
    """Download ``url`` (http, https, ftp or file) to ``target`` and return its size and sha256.

    Bytes go to ``<target>.part``, renamed only once complete, so an interrupted run never leaves a
    truncated file under the real name; an existing ``.part`` is resumed with an HTTP Range request
    when the server honours it, else downloaded again from the start.
    """
    part = target.with_name(target.name + ".part")
    try:
        try:
            digest = stream_to_part(url, part=part, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or not part.exists():
                raise
            part.unlink()  # 416: the server rejects our Range, so the partial file is stale
            digest = stream_to_part(url, part=part, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ArchiveMissing(f"cannot download {target.name} from {url}: {reason}") from None
    os.replace(part, target)
    return digest


def stream_to_part(url: str, *, part: Path, timeout: float) -> FileDigest:
    digest, have = hash_partial(part)
    request = urllib.request.Request(url, headers={"User-Agent": "hacm.fetch"})
    if have and urllib.parse.urlsplit(url).scheme in ("http", "https"):
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if getattr(response, "status", None) != 206:  # the whole file is coming: start over
            digest, have = hashlib.sha256(), 0
        expected_total = content_total(response, already=have)
        label = f"download {part.name.removesuffix('.part')}"
        with open(part, "ab" if have else "wb") as out, progress_bar(total=expected_total, label=label) as bar:
            bar.update(have)
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                have += len(chunk)
                bar.update(len(chunk))
    if expected_total is not None and have != expected_total:
        raise OSError(f"connection closed at {have} of {expected_total} bytes; rerun to resume from {part}")
    return FileDigest(size=have, sha256=digest.hexdigest())


def hash_partial(part: Path) -> tuple[object, int]:
    """sha256 state and size of an earlier partial download, so a resumed one ends with the full hash."""
    digest = hashlib.sha256()
    if not part.is_file():
        return digest, 0
    with open(part, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest, part.stat().st_size


def content_total(response, *, already: int) -> int | None:
    """Total size of the file being downloaded, from Content-Range or Content-Length if sent."""
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range and not content_range.endswith("*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return already + int(length) if length and length.isdigit() else None
