"""Small file primitives shared by every layer (torch-free)."""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class FileWalk:
    """The files a folder walk found, and one line for each thing it skipped."""

    files: list[Path]  # sorted
    skipped: list[str]  # linked folders not followed (loops, folders already walked), unreadable folders, file links


def walk_files(root: Path, pattern: str) -> FileWalk:
    """Files below `root` whose name matches `pattern`, each real file once.

    Linked folders are followed (hacm.fetch links a dataset folder the user already extracted into the raw
    folder instead of copying it), but each real folder is walked once: a link to a folder already walked,
    or to one that holds the link (`dirloop -> ..`, a loop), is skipped with one line in `skipped`. Real
    folders are walked before linked ones, so that a file keeps the path of its real folder (the PKU reader
    tells skeleton from label files by folder name). A file linked under a second path is kept once.
    """
    walk = _Walk(pattern)
    walk.visited[os.path.realpath(root)] = Path(root)
    walk.folder(Path(root), os.path.realpath(root))
    while walk.links:
        link = walk.links.pop(0)
        real = os.path.realpath(link)
        if walk.first_visit(link, real, holder=os.path.realpath(link.parent)):
            walk.folder(link, real)
    files, twice = _each_real_file_once(walk.found)
    return FileWalk(files=sorted(files), skipped=walk.skipped + twice)


class _Walk:
    """The state of one `walk_files`: folders walked (by real path), links still to follow, files found."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.visited: dict[str, Path] = {}  # real path of each folder walked -> the path it was walked under
        self.links: list[Path] = []  # linked folders, followed after every real folder
        self.found: list[tuple[Path, str, bool]] = []  # (path, real path, is a link)
        self.skipped: list[str] = []

    def first_visit(self, folder: Path, real: str, *, holder: str) -> bool:
        """Record `folder` (real path `real`, inside the real folder `holder`) as walked; False, with a line
        in `skipped`, when walking it would repeat a folder."""
        if holder == real or holder.startswith(real.rstrip(os.sep) + os.sep):
            self.skipped.append(f"{folder} links back to {real}, which holds it (a loop); skipped")
            return False
        if real in self.visited:
            walked = self.visited[real]
            where = str(walked) if str(walked) == real else f"{real} (walked as {walked})"
            self.skipped.append(f"{folder} leads to {where}, a folder already walked; skipped")
            return False
        self.visited[real] = folder
        return True

    def folder(self, top: Path, top_real: str) -> None:
        """Walk `top` and its real subfolders; linked subfolders are queued in `links`."""
        stack = [(top, top_real)]
        while stack:
            folder, real = stack.pop()
            try:
                with os.scandir(folder) as scan:
                    entries = sorted(scan, key=lambda entry: entry.name)
            except OSError as error:
                self.skipped.append(f"{folder} could not be read ({error.strerror or error}); skipped")
                continue
            subfolders = []
            for entry in entries:
                path = Path(folder) / entry.name
                try:
                    is_folder = entry.is_dir()
                except OSError:  # a link loop between files: left to the reader, which reports it
                    is_folder = False
                if is_folder and entry.is_symlink():
                    self.links.append(path)
                elif is_folder:
                    if self.first_visit(path, os.path.join(real, entry.name), holder=real):
                        subfolders.append((path, os.path.join(real, entry.name)))
                elif fnmatch.fnmatch(entry.name, self.pattern):
                    link = entry.is_symlink()
                    self.found.append((path, os.path.realpath(path) if link else os.path.join(real, entry.name), link))
            stack.extend(reversed(subfolders))


def _each_real_file_once(found: list[tuple[Path, str, bool]]) -> tuple[list[Path], list[str]]:
    """The paths of `found` without a second path to one file, and one line per folder that held such paths."""
    first: dict[str, Path] = {}
    again: dict[Path, list[tuple[Path, Path]]] = {}
    # A plain file wins over a link to it; then the first path in sorted order.
    for path, real, _ in sorted(found, key=lambda item: (item[2], str(item[0]))):
        if real in first:
            again.setdefault(path.parent, []).append((path, first[real]))
        else:
            first[real] = path
    lines = [
        f"{folder}: {len(pairs)} file{'s' * (len(pairs) > 1)} already found under another path "
        f"(e.g. {pairs[0][0].name} links to {pairs[0][1]}); not read twice"
        for folder, pairs in sorted(again.items())
    ]
    return list(first.values()), lines


def files_under(root: Path, pattern: str) -> list[Path]:
    """`walk_files(root, pattern).files`: for looking up a named file, where the walk that reads the data
    reports what it skipped."""
    return walk_files(root, pattern).files


def is_disk_full(error: OSError) -> bool:
    """A write refused for lack of space: the disk is full or the user's quota is spent."""
    return error.errno in (errno.ENOSPC, errno.EDQUOT)
