"""An advisory lock on an output while a process writes it (torch-free): a second process on the same output
stops with one line instead of interleaving its files with the first. The lock goes with the process (a
killed run leaves nothing to clean up); the lock file names the holder and is removed when it is released
(a folder the lock created for itself too, when nothing else was written there).

Shared file systems without working flock (NFS without lockd, Lustre mounted without `flock`) answer
ENOLCK, ENOSYS or EOPNOTSUPP: that is said as such, with what to do, and HACM_LOCKS=off runs without the
guard (Snakemake already keeps two jobs of one workflow off the same outputs).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

# flock's answers on a file system that cannot lock, as opposed to EWOULDBLOCK (another holder)
UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}
SWITCH = "HACM_LOCKS"  # HACM_LOCKS=off: no lock at all


class OutputLockError(RuntimeError):
    """The output cannot be locked; the message says why and what to do."""


class OutputInUse(OutputLockError):
    """Another process holds the lock; the message names it."""


class LockingUnsupported(OutputLockError):
    """The file system of the output does not support flock."""


def locking_disabled() -> bool:
    return os.environ.get(SWITCH, "").strip().lower() in ("off", "0", "no", "false")


class OutputLock:
    def __init__(self, lock_file: Path, *, output: Path, hint: str) -> None:
        self.lock_file, self.output, self.hint = Path(lock_file), Path(output), hint
        self.handle = None

    def __enter__(self) -> OutputLock:
        if locking_disabled():
            return self
        self.created_folder = not self.lock_file.parent.exists()
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                handle = self._lock()
            except OutputInUse:
                raise
            except OutputLockError:  # nothing can be locked here: leave no file or folder of ours behind
                if self.created_folder:
                    self.lock_file.unlink(missing_ok=True)
                    with contextlib.suppress(OSError):
                        self.lock_file.parent.rmdir()
                raise
            # A releasing holder unlinks the file before unlocking it: the file locked here may be one it has
            # just unlinked, which guards nothing; then lock the file now at the path.
            try:
                held, present = os.fstat(handle.fileno()), os.stat(self.lock_file)
                if (held.st_dev, held.st_ino) == (present.st_dev, present.st_ino):
                    break
            except FileNotFoundError:
                pass
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self.handle = handle
        return self

    def _lock(self):
        """The lock file, open and flocked, or the error saying who holds it or why it cannot be locked."""
        handle = open(self.lock_file, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            if error.errno in UNSUPPORTED:
                raise LockingUnsupported(
                    f"the file system of {self.output} does not support locking (flock: "
                    f"{os.strerror(error.errno)}); mount it with locks (NFS with lockd, Lustre with -o flock) or "
                    f"set {SWITCH}=off to run without the guard, making sure no two runs write {self.output} at once"
                ) from None
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputLockError(f"cannot lock {self.lock_file}: {os.strerror(error.errno or 0)}") from None
            raise OutputInUse(f"{self.output} is in use by another run ({holder}); {self.hint}") from None
        return handle

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.lock_file.unlink(missing_ok=True)  # while still held: see __enter__
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
            if self.created_folder:
                with contextlib.suppress(OSError):  # not empty: the run wrote there, or another run did
                    self.lock_file.parent.rmdir()
