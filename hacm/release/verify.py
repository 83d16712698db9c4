"""The weight-level verifier: every row of HA-CM against the release and, given a MAMP checkout, of MAE and
MAMP against maoyunyao/MAMP; and the header that says what was compared."""

from __future__ import annotations

from pathlib import Path

import torch

from hacm.release.baseline_rows import baseline_rows
from hacm.release.checkout import check_mamp_checkout, check_release_checkout
from hacm.release.hacm_rows import hacm_rows
from hacm.release.pairs import PERTURBATION, SAMPLES, mamp_args, release_args
from hacm.release.rows import TOLERANCE_NOTE, Row


def check_checkouts(release: Path, mamp: Path | None) -> None:
    """ReleaseError (one line) unless `release` (and `mamp`, when given) are usable checkouts."""
    check_release_checkout(release)
    if mamp is not None:
        check_mamp_checkout(mamp)


def verify(release: Path, mamp: Path | None, *, size: str, seed: int = 0) -> list[Row]:
    """The rows of HA-CM, then (with `mamp`) of MAE and MAMP."""
    rows = hacm_rows(release, size=size, seed=seed)
    if mamp is not None:
        rows += baseline_rows(mamp, "mae", size=size, seed=seed) + baseline_rows(mamp, "mamp", size=size, seed=seed)
    return rows


def _sizes(args: dict) -> str:
    return (f"D {args['dim_feat']}, depth {args['depth']}, decoder depth {args['decoder_depth']}, "
            f"{args['num_heads']} heads, T {args['num_frames']}, t_patch {args['t_patch_size']}")


def header(size: str, *, mamp: bool, seed: int) -> list[str]:
    lines = [f"size {size}: HA-CM {_sizes(release_args(size))}"]
    if mamp:
        lines.append(f"size {size}: MAE / MAMP {_sizes(mamp_args(size))}")
    lines += [f"input: {SAMPLES} samples x 2 bodies of hacm's synthetic skeletons (one second body absent), "
              f"float32 on the CPU, {torch.get_num_threads()} threads, seed {seed}; foreign biases and LayerNorms "
              f"perturbed by N(0, {PERTURBATION:g}^2) before the copy",
              TOLERANCE_NOTE]
    return lines
