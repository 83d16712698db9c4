"""hacm's model built from another checkout or commit of this repository, at a named size (torch): what the
side-by-side checks compare (benchmarks/speed/bench_release.py, profile_step.py, tests/test_step_numerics.py).
"""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from hacm.bench.step import PAPER_MODEL
from hacm.config import load_yaml
from hacm.release.checkout import RELEASE_MODEL_ARGS, ReleaseError

REPO = Path(__file__).resolve().parents[1]
JOINTS, COORDS = 25, 3
PAPER_BATCH = 16
EMBEDDED_CONFIG = REPO / "config" / "config.yaml"


def model_sizes(size: str) -> tuple[dict, int]:
    """hacm's ModelConfig arguments and the batch of a size: the release's paper size, or the embedded
    default's model and batch (only hacm runs at that size: the release hard-codes D = 256)."""
    hacm = dict(PAPER_MODEL, frames=RELEASE_MODEL_ARGS["num_frames"], t_patch=RELEASE_MODEL_ARGS["t_patch_size"])
    if size == "paper":
        return hacm, PAPER_BATCH
    pretrain = load_yaml(EMBEDDED_CONFIG)["pretrain"]
    return {**hacm, **pretrain["model"]}, pretrain["data"]["batch_size"]


def _hacm_modules() -> dict:
    return {name: module for name, module in sys.modules.items() if name == "hacm" or name.startswith("hacm.")}


def hacm_model(source: Path, sizes: dict) -> torch.nn.Module:
    """hacm's pretrainer of ModelConfig(**sizes), built by the hacm/ of the checkout `source` (whatever is installed)."""
    saved = _hacm_modules()  # import that tree's hacm under the same name, then put the installed one back
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(source))
    try:
        config_module = importlib.import_module("hacm.model.config")
        pretrainer = importlib.import_module("hacm.model.pretrainer")
        if not Path(pretrainer.__file__).resolve().is_relative_to(source.resolve()):
            raise ReleaseError(f"imported {pretrainer.__file__}, not the hacm of {source}")
        return pretrainer.HACMPretrainer(config_module.ModelConfig(**sizes))
    finally:
        sys.path.remove(str(source))
        for name in _hacm_modules():
            del sys.modules[name]
        sys.modules.update(saved)


@contextlib.contextmanager
def checkout_at(revision: str, workdir: Path) -> Iterator[Path]:
    """A git worktree of this repository at `revision`, under `workdir`, removed afterwards."""
    tree = workdir / "against"
    result = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), revision],
                            capture_output=True, text=True)
    if result.returncode:
        raise ReleaseError(f"git worktree add {revision}: {result.stderr.strip()}")
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
