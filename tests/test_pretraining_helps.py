"""Pretraining is worth it on the embedded dataset: with the workflow default's NTU-60 x-sub documents
(`python -m hacm.recipes`, config/config.yaml), HA-CM's encoders of two pretraining seeds are clearly above
a random one under the linear protocol, and fine-tuning is at least as good as the linear probe.

Measured on the 2-core AMD EPYC machine, one thread (ntu60-xsub, linear top-1 of the last epoch; generator
version 4 or 5, whose NTU files are the same; the converging probe, pretraining lr 0.05 per 256;
`benchmarks/experiments/bench_embedded_seeds.py`, docs/results.md "The embedded protocol over three seeds"): pretrained 69.4 / 66.2 / 77.3 % for seeds 0 / 1 / 2, random
encoders 43.1 / 39.4 / 42.6 %.
At this tiny budget (12 epochs, ~130 steps) pretraining is chaotic: a different rounding anywhere changes the outcome (before the
release's masking criteria and initialisation, the same command gave 56.1 % on an AMD EPYC and 33.2 % on
an Intel Xeon with AMX). The test runs the measured commands in fresh processes on one thread
(deterministic on a given CPU) and asserts, for pretraining seeds 0 and 1, 10 points over the best of
three random encoders.

Not part of the default test run until the margin is shown on both CPU families the CI machines come in
(AMD EPYC and Intel Xeon with AMX; only the first was available): run it with `python -m pytest -m margin`.
With PyTorch's kernels limited to AVX2 on the same machine (another rounding, docs/notes/2026-12-rounding-across-cpus.md; "The embedded protocol
over three seeds") seeds 0 / 1 / 2 gave 72.7 / 70.4 / 79.2 % against random 43.1 / 38.9 / 42.6 %.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, recipe_file

pytestmark = pytest.mark.margin

MARGIN = 0.10
RANDOM_SEEDS = (0, 1, 2)


def run_stage(stage: str, *arguments: str) -> None:
    """`python -m hacm.<stage>` in a fresh process on one thread: no state from other tests leaks in."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", f"hacm.{stage}", *arguments, "--no-progress"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, Path]:
    """The embedded recipe's NTU-60 x-sub documents, as `python -m hacm.recipes` writes them."""
    folder = tmp_path_factory.mktemp("configs")
    return {"pretrain": recipe_file(folder, "pretrain", "ntu60-xsub", "hacm")} | {
        protocol: recipe_file(folder, "evaluate", "ntu60-xsub", "hacm", protocol) for protocol in ("linear", "finetune")}


def top1(configs: dict[str, Path], protocol: str, data: Path, encoder: str, out: Path, *overrides: str) -> float:
    arguments = ["--protocol", protocol, "--config", str(configs[protocol]), "--data", str(data), "--encoder", encoder,
                 "--out", str(out)]
    for override in overrides:
        arguments += ["--set", override]
    run_stage("evaluate", *arguments)
    return json.loads((out / "metrics.json").read_text())["top1"]


PRETRAIN_SEEDS = (0, 1)


@pytest.fixture(scope="module")
def pretrained(configs, synthetic_stores, tmp_path_factory) -> dict[int, Path]:
    encoders = {}
    for seed in PRETRAIN_SEEDS:
        out = tmp_path_factory.mktemp(f"pretrained_seed{seed}")
        run_stage("pretrain", "--config", str(configs["pretrain"]), "--data", str(synthetic_stores / "ntu60-xsub"),
                  "--out", str(out), "--set", f"seed={seed}")
        encoders[seed] = out / "encoder.pt"
    return encoders


@pytest.fixture(scope="module")
def linear_top1(configs, pretrained, synthetic_stores, tmp_path_factory) -> dict[int, float]:
    return {seed: top1(configs, "linear", synthetic_stores / "ntu60-xsub", str(encoder), tmp_path_factory.mktemp("linear"),
                       f"seed={seed}")
            for seed, encoder in pretrained.items()}


def test_pretrained_encoder_is_clearly_above_random(configs, linear_top1, synthetic_stores, tmp_path):
    data = synthetic_stores / "ntu60-xsub"
    random = [top1(configs, "linear", data, "none", tmp_path / f"random{seed}", f"seed={seed}") for seed in RANDOM_SEEDS]
    print(f"\nlinear top-1: pretrained {linear_top1}, random encoders {', '.join(f'{r:.3f}' for r in random)}")
    assert min(linear_top1.values()) >= max(random) + MARGIN


def test_finetuning_is_at_least_as_good_as_linear(configs, pretrained, linear_top1, synthetic_stores, tmp_path):
    finetuned = top1(configs, "finetune", synthetic_stores / "ntu60-xsub", str(pretrained[0]), tmp_path / "finetune")
    print(f"\nfine-tune top-1 {finetuned:.3f}, linear {linear_top1[0]:.3f}")
    assert finetuned >= linear_top1[0]
