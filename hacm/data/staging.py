"""Staging a benchmark's stores to node-local scratch for one run (torch-free).

On a cluster the stores usually lie on a shared file system (NFS, Lustre, GPFS), where a memory-mapped
read of random samples is slow and loads a server every job shares. `staged(data_dir, scratch)` copies
the split folders (train/, test/) under `scratch` (`$TMPDIR`, node-local on most clusters), yields the
copy, and removes it afterwards. Stores are identified by their content digest, not their path, so a
staged run resumes a checkpoint written from the shared copy and the other way round.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hacm.data.storage import INFO_FILE

SPLITS = ("train", "test")


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


@contextmanager
def staged(data_dir: Path, scratch: Path | None, *, prog: str = "hacm") -> Iterator[Path]:
    """`data_dir`'s splits copied under `scratch` for the duration, or `data_dir` itself when scratch is None
    or lacks the room (said in one line: the run then reads the shared copy)."""
    data_dir = Path(data_dir)
    if scratch is None:
        yield data_dir
        return
    splits = [data_dir / split for split in SPLITS if (data_dir / split / INFO_FILE).is_file()]
    needed = sum(folder_bytes(split) for split in splits)
    scratch = Path(scratch)
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(scratch).free
    except OSError as error:
        print(f"{prog}: cannot stage the stores to {scratch} ({error.strerror}); reading them in {data_dir}",
              file=sys.stderr)
        yield data_dir
        return
    if needed > 0.9 * free:
        print(f"{prog}: {scratch} has {free / 2**30:.1f} GiB free, the stores need {needed / 2**30:.1f} GiB; "
              f"reading them in {data_dir}", file=sys.stderr)
        yield data_dir
        return
    root = scratch / f"hacm-stage-{os.getpid()}"
    copy = root / data_dir.name
    started = time.monotonic()
    try:
        try:
            for split in splits:
                shutil.copytree(split, copy / split.name)
        except OSError as error:  # a full or vanishing scratch disk: the shared copy still serves
            print(f"{prog}: staging the stores to {copy} failed ({error.strerror or error}); reading them in "
                  f"{data_dir}", file=sys.stderr)
            shutil.rmtree(root, ignore_errors=True)
            yield data_dir
            return
        print(f"{prog}: staged {needed / 2**30:.2f} GiB of stores to {copy} in {time.monotonic() - started:.0f} s",
              file=sys.stderr)
        yield copy
    finally:
        shutil.rmtree(root, ignore_errors=True)
