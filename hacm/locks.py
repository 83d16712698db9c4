"""An advisory lock on an output while a process writes it (torch-free): a second process on the same output
stops with one line instead of interleaving its files with the first. The lock goes with the process (a
killed run leaves nothing to clean up); the lock file names the holder."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path


class OutputInUse(RuntimeError):
    """Another process holds the lock; the message names it."""


class OutputLock:
    def __init__(self, lock_file: Path, *, output: Path, hint: str) -> None:
        self.lock_file, self.output, self.hint = Path(lock_file), Path(output), hint
        self.handle = None

    def __enter__(self) -> OutputLock:
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_file, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise OutputInUse(f"{self.output} is in use by another run ({holder}); {self.hint}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
