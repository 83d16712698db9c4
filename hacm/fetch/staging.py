"""Extraction that lands whole or not at all: an archive is extracted into a staging folder beside the raw
folder and moved into it only once every member is written, so that `hacm.prepare` never reads half an
archive (a broken member would count as one bad file among thousands and pass its threshold).

The staging folder sits beside the raw folder, not in it: prepare reads every file below the raw folder,
and a kill -9 leaves the staging folder behind; the next fetch removes it first. Beside it, it is on the
same file system, so the move is a rename.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hacm.fetch.bounds import ExtractionLimits
from hacm.fetch.extract import extract_archive
from hacm.fetch.manifest import FetchError


def staging_dir(raw_dir: Path) -> Path:
    real = raw_dir.resolve()  # a --raw that links elsewhere: stage beside where the files go
    return real.parent / f".{real.name}.extracting"


def remove_leftover_staging(raw_dir: Path) -> None:
    """What a killed run left (never read by prepare, but it holds disk space)."""
    remove_tree(staging_dir(raw_dir))


def extract_in_staging(path: Path, *, raw_dir: Path, workers: int, limits: ExtractionLimits) -> int:
    """Extract ``path`` into the staging folder, then move its content into ``raw_dir``; returns the number
    of members. On any failure (Ctrl-C too) the staging folder is removed and ``raw_dir`` is untouched."""
    staging = staging_dir(raw_dir)
    check_staging_possible(raw_dir, staging=staging)
    remove_tree(staging)
    staging.mkdir()
    try:
        members = extract_archive(path, raw_dir=staging, workers=workers, limits=limits)
        move_into(staging, raw_dir, archive=path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # empty after a success; must not hide the error otherwise
    return members


def check_staging_possible(raw_dir: Path, *, staging: Path) -> None:
    parent = staging.parent
    why = f"archives are extracted into {staging.name} beside --raw {raw_dir} first, so that a failed " \
          "extraction leaves nothing half-written in it"
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FetchError(f"{why}, but {parent} is not writable; choose a --raw inside a folder you can write")
    if os.stat(parent).st_dev != os.stat(raw_dir).st_dev:
        raise FetchError(f"{why}, and the move needs one file system, but --raw {raw_dir} is a mount point; "
                         "choose a folder inside it as --raw")


def move_into(staged: Path, target: Path, *, archive: Path) -> None:
    """Move each entry of ``staged`` into ``target``: by one rename where ``target`` has no folder of that
    name, else entry by entry into that folder (both NTU zips fill nturgb+d_skeletons/). A link in
    ``target`` is replaced, never followed, so nothing lands outside the raw folder."""
    for entry in list(os.scandir(staged)):
        destination = target / entry.name
        if destination.is_dir() and not destination.is_symlink():
            if not entry.is_dir(follow_symlinks=False):
                raise FetchError(f"{destination} is a folder, but {archive} holds a file of that name; "
                                 "move the folder away and rerun")
            move_into(Path(entry.path), destination, archive=archive)
            continue
        if destination.is_symlink() or (destination.exists() and entry.is_dir(follow_symlinks=False)):
            destination.unlink()  # a link, or a file where the archive has a folder: os.replace cannot
        os.replace(entry.path, destination)


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
