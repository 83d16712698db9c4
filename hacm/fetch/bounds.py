"""Bounds on what an archive may write: no more than the official archives need, no member past the
size its header declares, nothing started without the free space for it, and a full disk named as such.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hacm.fetch.manifest import Archive, ArchiveInvalid, FetchError

# Skeleton and label text compresses 2.3-2.9x with Deflate and 3-4x with LZMA (measured on the real NTU and
# PKU-MMD recordings of the project's test data), so 100x is some 30 times what the official archives need; a bomb of zeros
# inflates 1000x.
MAX_RATIO = 100
# A whole archive averages over its members, so its bound can be tighter: 20x is still five times what real
# skeleton archives reach, and refuses a bomb that spreads itself over many moderately packed members (the
# second probe's 7 MB 7z expanding 34 times to 240 MB).
MAX_ARCHIVE_RATIO = 20
# Members of under 1 KiB compressed count as 1 KiB: the ratio of a tiny file says nothing (an NTU sample
# without skeletons is a few hundred bytes of "0" lines), and 100 KiB cannot fill a disk.
RATIO_FLOOR_BYTES = 1 << 10
# The manifest's expanded sizes are estimates from published counts (manifest.py, EXPANDED SIZES): four
# times them leaves room for the estimate being off by as much, while a bomb of terabytes is refused.
EXPANSION_MARGIN = 4
# Never below 64 MiB: the label archives' estimates are under a megabyte, and so much harms no disk.
MIN_TOTAL_BYTES = 64 << 20


@dataclass(frozen=True)
class ExtractionLimits:
    """How far an archive may expand: ``max_ratio`` per member (or over the whole archive where members'
    compressed sizes are unknown), ``max_total`` bytes in all (None: no bound)."""

    max_ratio: float = MAX_RATIO
    max_archive_ratio: float = MAX_ARCHIVE_RATIO
    max_total: int | None = None


# The total bound rests on estimates: HACM_FETCH_TOTAL_BOUND=off lifts it for an official archive that
# outgrows them (the ratio, declared-size and free-space checks stay).
TOTAL_BOUND_SWITCH = "HACM_FETCH_TOTAL_BOUND"


def limits_for(archive: Archive) -> ExtractionLimits:
    lifted = os.environ.get(TOTAL_BOUND_SWITCH, "").strip().lower() in ("off", "0", "no", "false")
    if archive.expanded_size is None or lifted:
        return ExtractionLimits()
    return ExtractionLimits(max_total=max(EXPANSION_MARGIN * archive.expanded_size, MIN_TOTAL_BYTES))


def format_bytes(size: int) -> str:
    value, unit = float(size), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def check_declared_sizes(path: Path, members: list[tuple[str, int, int | None]], *, limits: ExtractionLimits,
                         into: Path) -> int:
    """Before anything is written: each (name, declared size, compressed size or None) within the ratio,
    the whole within the ratio and ``max_total`` (check_expansion), and the free space where it goes.
    Returns the declared total."""
    for name, size, compressed in members:
        if compressed is not None and size > limits.max_ratio * max(compressed, RATIO_FLOOR_BYTES):
            raise bomb(path, f"member {name!r} expands {format_bytes(compressed)} to {format_bytes(size)}, "
                             f"more than {limits.max_ratio:g} times")
    total = sum(size for _, size, _ in members)
    check_expansion(path, total, limits=limits)
    existing = next(folder for folder in (into, *into.parents) if folder.exists())  # `into` may be made later
    free = shutil.disk_usage(existing).free
    if total > free:
        raise FetchError(f"extracting {path.name} needs {format_bytes(total)}, but only {format_bytes(free)} "
                         f"are free on the disk of {into}; free some space (or choose another --raw) and rerun")
    return total


def check_expansion(path: Path, total: int, *, limits: ExtractionLimits) -> None:
    """``total`` bytes from the archive at ``path``: within the ratio of its own size, and ``max_total``."""
    packed = path.stat().st_size
    if total > limits.max_archive_ratio * max(packed, RATIO_FLOOR_BYTES):
        raise bomb(path, f"its {format_bytes(packed)} expand to {format_bytes(total)}, "
                         f"more than {limits.max_archive_ratio:g} times")
    if limits.max_total is not None and total > limits.max_total:
        raise bomb(path, f"it expands to {format_bytes(total)}, more than the "
                         f"{format_bytes(limits.max_total)} its official content could take",
                   advice=f"delete it and download it again; if it is the official archive, rerun with "
                          f"{TOTAL_BOUND_SWITCH}=off and tell us its size")


def bomb(path: Path, why: str, *, advice: str = "delete it and download it again") -> ArchiveInvalid:
    return ArchiveInvalid(f"{path} is not what the dataset ships: {why} (a corrupt file or a decompression "
                          f"bomb); {advice}")


class BoundedWriter:
    """A member's output file that refuses to grow past the size the archive's header declares, so that
    a stream inflating further (a bomb with a lying header) stops at once instead of filling the disk."""

    def __init__(self, target, *, declared: int, name: str, path: Path) -> None:
        self.target, self.declared, self.name, self.path = target, declared, name, path
        self.written = 0

    def write(self, data: bytes) -> int:
        if self.written + len(data) > self.declared:
            raise ArchiveInvalid(f"{self.path}: member {self.name!r} inflates past the {self.declared} bytes its "
                                 "header declares (a corrupt file or a decompression bomb); delete it and "
                                 "download it again")
        self.written += len(data)
        return self.target.write(data)

    def check_complete(self) -> None:
        if self.written != self.declared:
            raise ArchiveInvalid(f"{self.path}: member {self.name!r} holds {self.written} bytes, its header "
                                 f"declares {self.declared}; the archive is corrupt: delete it and download it again")


def no_space(path: Path, *, writing: str | Path) -> FetchError:
    """One line for a full disk (or quota), naming where: the environment, not the archive (exit 2)."""
    return FetchError(f"no space left on device writing {writing} while extracting {path.name}; the partial "
                      "output was removed: free some space (or choose another --raw) and rerun")
