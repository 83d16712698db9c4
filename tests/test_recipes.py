"""config/paper.yaml resolves, for every benchmark and protocol, to the release's recipe (DESIGN §3, §4).

The values below are written out from the release's files (config/README.md names each one), not read
from the config, so that a slip like the former 13x lower learning rate fails here. The documents are
taken from the workflow's own dry run (the JSON each run's config job would write), so they are what a
cluster run would use.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from hacm.configure import check
from hacm.runs import benchmark_of_folder
from hacm.train.config import RECORD_KEY, PretrainConfig
from tests.conftest import REPO

# benchmark: (T, t_patch, decoder depth, epochs, global batch), HA-CM-main config/<b>/pretrain_hacm.yaml
# and script_pretrain_hacm.sh (GPUs per run).
HACM_PRETRAIN = {
    "ntu60-xsub": (72, 3, 3, 500, 64),
    "ntu60-xview": (120, 4, 5, 400, 128),
    "ntu120-xsub": (72, 3, 3, 400, 256),
    "ntu120-xset": (120, 4, 5, 400, 128),
    "pku1-xsub": (120, 4, 5, 400, 128),
    "pku2-xsub": (72, 3, 3, 400, 256),
}
# MAMP's published setting for the MAE and MAMP rows (maoyunyao/MAMP pretrain_{mae,mamp}_t120_*.yaml).
BASELINE_PRETRAIN = {b: (120, 4, 3 if b.startswith("ntu60") else 5, 400, 128) for b in HACM_PRETRAIN}
MAMP_TAU = {b: 0.75 if b.startswith("ntu120") else 0.80 for b in HACM_PRETRAIN}
# benchmark: (global batch, absolute lr) of the linear probe (linprobe.yaml x 2 GPUs of script_linprobe.sh).
LINEAR = {b: (256, 0.1) for b in HACM_PRETRAIN} | {"pku1-xsub": (128, 0.1), "pku2-xsub": (128, 0.01)}
FINETUNE = (48, 3e-4, 1e-5)  # script_finetune.sh --lr 3e-4 --min_lr 1e-5, 24 per GPU x 2 GPUs

COMMAND = re.compile(r"python -m hacm\.configure (pretrain|evaluate) --json ('.*?') --out (\S+)")


@pytest.fixture(scope="module")
def paper_runs() -> dict[str, tuple[str, dict]]:
    """run.yaml path -> (kind, document) for every run of the paper configuration."""
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", "all_tables",
                             "--configfile", "config/paper.yaml"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = {}
    for kind, quoted, out in COMMAND.findall(result.stdout):
        runs[out] = (kind, json.loads(shlex.split(quoted)[0]))
    return runs


def runs_of(paper_runs, *, protocol: str) -> dict[tuple[str, str], dict]:
    """(benchmark, method) -> document of seed 0's runs of one protocol folder kind."""
    found = {}
    for path, (_, document) in paper_runs.items():
        _, bench, method, folder, seed, _ = path.split("/")
        if folder.startswith(protocol) and seed == "seed0":
            found[(benchmark_of_folder(bench), method, folder)] = document
    return found


def test_every_pretraining_run_uses_the_release_recipe(paper_runs):
    runs = runs_of(paper_runs, protocol="pretrain")
    assert len(runs) == 6 * 3 + 12  # HA-CM, MAE, MAMP on six benchmarks; twelve ablations on NTU-60 x-sub
    for (benchmark, method, _), document in runs.items():
        base = method.split("-")[0]
        frames, t_patch, decoder_depth, epochs, batch = (HACM_PRETRAIN if base == "hacm" else BASELINE_PRETRAIN)[benchmark]
        resolved = PretrainConfig.from_dict(document)  # defaults and the method's preset filled in
        model, optim = resolved.model, resolved.optim
        where = f"{benchmark} {method}"
        assert (model.frames, model.t_patch, model.decoder_depth) == (frames, t_patch, decoder_depth), where
        assert (model.dim, model.depth, model.heads, model.mlp_ratio) == (256, 8, 8, 4.0), where
        assert optim.epochs == epochs and optim.warmup_epochs == 20 and optim.weight_decay == 0.05, where
        assert optim.clip_grad is None and optim.betas == (0.9, 0.95) and optim.precision == "fp32", where
        if method in ("hacm", "mae", "mamp"):
            assert model.mask_ratio == 0.9 and model.score_scaling == "max", where
        assert check("pretrain", document) == {"global_batch": batch, "lr_absolute": 1e-3,
                                               "lr_per_256": pytest.approx(1e-3 * 256 / batch),
                                               "min_lr_absolute": 5e-4}, where
        if base == "mamp":
            assert model.score_temperature == MAMP_TAU[benchmark] and not model.keep_high_scores, where
        if method == "hacm":
            assert model.score_temperature == 0.9 and model.keep_high_scores and model.embedding_clip is None, where


def test_every_evaluation_uses_the_release_protocol(paper_runs):
    runs = {key: doc for key, doc in paper_runs.items() if doc[0] == "evaluate"}
    assert runs
    for path, (_, document) in runs.items():
        _, bench, method, folder, _, _ = path.split("/")
        benchmark = benchmark_of_folder(bench)
        rates = check("evaluate", document)
        assert document["monitor"]["test_every"] == 1, path  # the best epoch is what the release reports
        if folder == "linear":
            batch, lr = LINEAR[benchmark]
            assert document["linear"]["augment"] is True and document["linear"]["epochs"] == 100, path
            assert (rates["global_batch"], rates["lr_absolute"]) == (batch, lr), path
        else:
            finetune = document["finetune"]
            assert (rates["global_batch"], rates["lr_absolute"], rates["min_lr_absolute"]) == FINETUNE, path
            assert (finetune["epochs"], finetune["warmup_epochs"], finetune["layer_decay"], finetune["drop_path"],
                    finetune["label_smoothing"]) == (100, 5, 0.8, 0.3, 0.1), path
        if method == "random":  # the "no pretraining" rows use HA-CM's architecture on that benchmark
            frames, t_patch, *_ = HACM_PRETRAIN[benchmark]
            assert (document["model"]["frames"], document["model"]["t_patch"]) == (frames, t_patch), path


def test_run_yaml_records_the_resolved_learning_rates(tmp_path):
    document = {"data": {"batch_size": 64}, "optim": {"lr": 1e-3, "min_lr": 5e-4, "lr_batch": 64}}
    out = tmp_path / "run.yaml"
    result = subprocess.run([sys.executable, "-m", "hacm.configure", "pretrain", "--json", json.dumps(document),
                             "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    written = yaml.safe_load(out.read_text())
    assert written[RECORD_KEY] == {"global_batch": 64, "lr_absolute": 1e-3, "lr_per_256": 4e-3,
                                   "min_lr_absolute": 5e-4}
    # The stages recompute these values: a run.yaml with its record still loads.
    from hacm.train.config import load_pretrain_config

    assert load_pretrain_config(out).optim.scaled_lr(64) == pytest.approx((1e-3, 5e-4))
