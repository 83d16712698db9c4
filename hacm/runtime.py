"""Process set-up for the compute-heavy entry points.

glibc returns every allocation above its mmap threshold (at most 32 MB by default) to the kernel
when it is freed, so the next training step faults the same pages in again: with the decoder's
activations (13,824 tokens x 1,024 features = 56 MB each) that was ~600 MB of page faults and about
a fifth of a CPU step. Raising the thresholds keeps freed blocks in the heap for reuse. glibc reads
them only at start-up, so the entry point re-executes itself once with them set.
"""

from __future__ import annotations

import os
import sys

ALLOCATOR_SETTINGS = {"MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 33)}
_MARKER = "HACM_ALLOCATOR_SET"


def ensure_allocator_settings() -> None:
    """Re-execute the current command once with the allocator settings (Linux/glibc only; HACM_NO_REEXEC=1 skips)."""
    if (os.environ.get(_MARKER) or os.environ.get("HACM_NO_REEXEC") or not sys.platform.startswith("linux")
            or not hasattr(sys, "orig_argv")):
        return
    environment = {**os.environ, **{k: os.environ.get(k, v) for k, v in ALLOCATOR_SETTINGS.items()}, _MARKER: "1"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)


def allocator_in_force() -> str:
    """raised (these thresholds), default (glibc's own) or custom (other values) in this process's environment."""
    values = {key: os.environ.get(key) for key in ALLOCATOR_SETTINGS}
    if values == ALLOCATOR_SETTINGS:
        return "raised"
    return "default" if not any(values.values()) else "custom"
