"""Checkpoints: written atomically every epoch, loadable with `weights_only=True`, carrying their config."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from hacm.files import is_disk_full
from hacm.locks import OutputLock, OutputLockError


LOCK_FILE = ".lock"


class CheckpointError(ValueError):
    """A checkpoint or encoder file that cannot be used; the message says why."""


def git_commit() -> str:
    """The commit of the code that runs (with `-dirty` when it has local changes), or 'unknown'."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def source_digest() -> str:
    """sha256 of the hacm package's Python sources: the code version of results that are cheap to
    recompute (the linear feature cache), where any change of code must invalidate them. Works without git."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class RunFolderLock(OutputLock):
    """The lock of a run folder (`<out>/.lock`) while pretraining or an evaluation writes it."""

    def __init__(self, out: Path) -> None:
        super().__init__(Path(out) / LOCK_FILE, output=Path(out), hint="wait for it to finish or use another --out")

    def __enter__(self) -> RunFolderLock:
        if self.output.exists() and not self.output.is_dir():
            raise CheckpointError(f"--out {self.output} is a file, not a run folder")
        try:
            return super().__enter__()
        except OutputLockError as error:
            raise CheckpointError(str(error)) from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_save(state: dict, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it 0600; a shared results folder needs the usual mode
    try:
        # Through a Python file, not a path: torch's own writer reports a full disk as "unexpected pos 324480
        # vs 324368"; a file object's write raises the OSError that says what happened.
        with open(temporary, "wb") as stream:
            torch.save(state, stream)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        kept = "the previous one is kept" if path.exists() else "nothing was written"
        raise CheckpointError(f"cannot write {path}: {write_failure(error, path.parent)}; {kept}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_failure(error: OSError, folder: Path) -> str:
    """An OSError of a write as a few words: its reason, and how much space is left where it wrote."""
    reason = error.strerror or str(error)
    if is_disk_full(error):
        try:
            reason += f" ({shutil.disk_usage(folder).free / 2 ** 20:.1f} MiB free on its file system)"
        except OSError:
            pass
    return reason


def load_state(path: Path, *, map_location="cpu") -> dict:
    """A checkpoint's content, with only tensors and plain Python values allowed (weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    with open(path, "rb") as stream:
        if stream.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive
            raise CheckpointError(f"{path} is not a PyTorch checkpoint file (it is not a zip archive)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated file, foreign pickle
        raise CheckpointError(f"{path} is not a readable checkpoint ({_reason(error)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a checkpoint dictionary")
    return state


def load_resumable(path: Path, resolved: dict, *, restart_on_change: bool, map_location="cpu",
                   announce: bool = True, data: dict | None = None) -> dict | None:
    """The checkpoint to resume from: None when there is none, or when it was written with another
    configuration or from other data (`data`: the identity of the stores it trains on) and
    `restart_on_change` (it is then left to be overwritten by the new run's first save, so that no
    process of a data-parallel job deletes what another is reading); otherwise a change is an error
    rather than mixed in."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = load_state(path, map_location=map_location)
    except CheckpointError as error:
        if not restart_on_change:
            raise CheckpointError(f"{error}; delete it to start over") from None
        if announce:
            print(f"{error}; starting over", file=sys.stderr)
        return None
    if state.get("config") != resolved:
        change = "with another configuration"
    elif data is not None and state.get("data") != data:
        change = "from other data (the stores' content digests differ)"
    else:
        return state
    if not restart_on_change:
        raise CheckpointError(f"{path} was written {change}; use a new --out or delete it to start over")
    if announce:
        print(f"{path} was written {change}; starting over", file=sys.stderr)
    return None


def module_digest(module: torch.nn.Module) -> str:
    """sha256 of a module's parameters and buffers (names, dtypes, shapes, values): the identity of
    weights that have no file, such as a random encoder's."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _reason(error: Exception) -> str:
    """The informative line of a torch.load error, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    code = re.search(r"GLOBAL (\S+)", text)
    if code:  # a pickled object, e.g. a function: refused, and torch's advice to allow it is not repeated
        return f"it holds pickled code ({code.group(1)}), which is never loaded"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "WeightsUnpickler error" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip()[:200]
    first = lines[0].split(". ")[0].rstrip(".") if lines else ""  # its first sentence; the rest is torch's advice
    return f"{type(error).__name__}: {first[:200]}"


def rng_state(generators: dict[str, torch.Generator]) -> dict:
    """Every random state a resumed run needs to continue exactly."""
    state = {"torch": torch.get_rng_state(), "generators": {k: g.get_state() for k, g in generators.items()}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict, generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    for key, generator in generators.items():
        generator.set_state(state["generators"][key])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_run_state(path: Path, *, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler | None, generators: dict[str, torch.Generator], epoch: int,
                   resolved: dict, data: dict, **extra) -> None:
    """The one checkpoint layout of every run (pretraining and evaluation): each module's state under its
    key, optimiser, grad scaler, epoch, every random state, the resolved config, the stores' identity
    and the git commit (plus `extra`, e.g. the step)."""
    atomic_save({**{key: module.state_dict() for key, module in modules.items()}, "optimizer": optimizer.state_dict(),
                 "scaler": scaler.state_dict() if scaler is not None else None, "epoch": epoch, **extra,
                 "rng": rng_state(generators), "config": resolved, "data": data, "git_commit": git_commit()}, path)


def restore_run_state(state: dict, *, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
                      scaler: torch.amp.GradScaler | None, generators: dict[str, torch.Generator],
                      source: Path | str = "the checkpoint") -> int:
    """Load what save_run_state wrote into the run's objects; the first epoch still to train. A checkpoint
    that lacks a part or whose tensors do not fit is a one-line error (it was not written by this run)."""
    try:
        for key, module in modules.items():
            module.load_state_dict(state[key])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"], generators)
        return int(state["epoch"]) + 1
    except KeyError as error:
        problem = f"it has no {error.args[0]!r} entry"
    except (RuntimeError, ValueError, TypeError) as error:
        problem = str(error).strip().splitlines()[0][:200]
    raise CheckpointError(f"{source} does not fit this run ({problem}); delete it to start over")
