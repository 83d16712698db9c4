"""config/paper.yaml resolves, for every benchmark and protocol, to the release's recipe (docs/method.md §3, §4).

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
from hacm.eval.config import EvalConfig
from hacm.runs import benchmark_of_folder
from hacm.train.config import RECORD_KEY, PretrainConfig
from tests.conftest import REPO

# benchmark: (T, t_patch, decoder depth, epochs, global batch), HA-CM-main config/<b>/pretrain_hacm.yaml
# and script_pretrain_hacm.sh (GPUs per run). T / t_patch 72 / 3 everywhere: the only setting the release's
# model runs (x-view, x-set and PKU-MMD I's configs say 120 / 4: the variant below).
HACM_PRETRAIN = {
    "ntu60-xsub": (72, 3, 3, 500, 64),
    "ntu60-xview": (72, 3, 5, 400, 128),
    "ntu120-xsub": (72, 3, 3, 400, 256),
    "ntu120-xset": (72, 3, 5, 400, 128),
    "pku1-xsub": (72, 3, 5, 400, 128),
    "pku2-xsub": (72, 3, 3, 400, 256),
}
# L_cc per group of the release's per-GPU sequences: per-GPU batch (pretrain_hacm.yaml l.41) x 2 bodies
# (the release computes it on each GPU, model_hacm/transformer.py l.527-535); MAE / MAMP have no L_cc.
HACM_CONTRAST_GROUP = {"ntu60-xsub": 128, "ntu60-xview": 64, "ntu120-xsub": 128, "ntu120-xset": 64,
                       "pku1-xsub": 64, "pku2-xsub": 128}
# The variant "configs_as_written" (commented out in config/paper.yaml): those three at 120 / 4.
AS_WRITTEN = {"ntu60-xview", "ntu120-xset", "pku1-xsub"}
# HA-CM's input (`vel: True` in config/{ntu120_xsub,pkuv2_xsub}_joint/pretrain_hacm.yaml and linprobe.yaml);
# MAE, MAMP (maoyunyao/MAMP configs: vel False) and the random rows read coordinates.
HACM_VELOCITY = {"ntu120-xsub", "pku2-xsub"}
# MAMP's published setting for the MAE and MAMP rows (maoyunyao/MAMP pretrain_{mae,mamp}_t120_*.yaml).
BASELINE_PRETRAIN = {b: (120, 4, 3 if b.startswith("ntu60") else 5, 400, 128) for b in HACM_PRETRAIN}
MAMP_TAU = {b: 0.75 if b.startswith("ntu120") else 0.80 for b in HACM_PRETRAIN}
# benchmark: (global batch, absolute lr) of the linear probe (linprobe.yaml x 2 GPUs of script_linprobe.sh).
LINEAR = {b: (256, 0.1) for b in HACM_PRETRAIN} | {"pku1-xsub": (128, 0.1), "pku2-xsub": (128, 0.01)}
FINETUNE = (48, 3e-4, 1e-5)  # script_finetune.sh --lr 3e-4 --min_lr 1e-5, 24 per GPU x 2 GPUs
# Layer decay: finetune.yaml l.51 (0.8); from scratch 1.0 (script_finetune_scratch.sh l.12, script_semi.sh l.71).
LAYER_DECAY = {"random": 1.0}

COMMAND = re.compile(r"python -m hacm\.configure (pretrain|evaluate) --json ('.*?') --out (\S+)")


def dry_run_documents(configfile) -> dict[str, tuple[str, dict]]:
    """run.yaml path -> (kind, document) for every run of a configuration, from the workflow's dry run."""
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", "all_tables",
                             "--configfile", str(configfile)], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = {}
    for kind, quoted, out in COMMAND.findall(result.stdout):
        runs[out] = (kind, json.loads(shlex.split(quoted)[0]))
    return runs


@pytest.fixture(scope="module")
def paper_runs() -> dict[str, tuple[str, dict]]:
    """run.yaml path -> (kind, document) for every run of the paper configuration."""
    return dry_run_documents("config/paper.yaml")


def pretraining_input(benchmark: str, method: str) -> str:
    """What an encoder was pretrained on (an ablation counts as hacm; ablations run on NTU-60 x-sub)."""
    return "velocity" if method.split("-")[0] == "hacm" and benchmark in HACM_VELOCITY else "coordinates"


def evaluation_input(benchmark: str, method: str, folder: str) -> str:
    """An encoder is evaluated on what it was pretrained on; a transfer run's encoder is its source's."""
    if method == "random":
        return "coordinates"
    source = benchmark_of_folder(folder.removeprefix("transfer-from-")) if folder.startswith("transfer-") else benchmark
    return pretraining_input(source, method)


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
    assert len(runs) == 6 * 3 + 13  # HA-CM, MAE, MAMP on six benchmarks; thirteen ablations on NTU-60 x-sub
    for (benchmark, method, _), document in runs.items():
        base = method.split("-")[0]
        frames, t_patch, decoder_depth, epochs, batch = (HACM_PRETRAIN if base == "hacm" else BASELINE_PRETRAIN)[benchmark]
        resolved = PretrainConfig.from_dict(document)  # defaults and the method's preset filled in
        model, optim = resolved.model, resolved.optim
        where = f"{benchmark} {method}"
        assert (model.frames, model.t_patch, model.decoder_depth) == (frames, t_patch, decoder_depth), where
        assert resolved.data.input == pretraining_input(benchmark, method), where
        assert (model.dim, model.depth, model.heads, model.mlp_ratio) == (256, 8, 8, 4.0), where
        if base == "hacm":
            assert model.contrast_group == HACM_CONTRAST_GROUP[benchmark], where
            assert (batch * model.num_bodies) % model.contrast_group == 0, where
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
                    finetune["label_smoothing"]) == (100, 5, LAYER_DECAY.get(method, 0.8), 0.3, 0.1), path
        if not folder.startswith("transfer-"):  # transfer: test_a_transfer_run_reads_its_source_encoders_input
            assert EvalConfig.from_dict(document).data.input == evaluation_input(benchmark, method, folder), path
        if method == "random":  # the "no pretraining" rows use HA-CM's architecture on that benchmark
            frames, t_patch, *_ = HACM_PRETRAIN[benchmark]
            assert (document["model"]["frames"], document["model"]["t_patch"]) == (frames, t_patch), path


def test_the_from_scratch_rows_train_without_layer_decay(paper_runs):
    """script_finetune_scratch.sh trains the "random" rows with --layer_decay 1.0, the others keep 0.8."""
    decays = {(benchmark, method): document["finetune"]["layer_decay"]
              for (benchmark, method, _), document in runs_of(paper_runs, protocol="finetune").items()}
    assert {decay for (_, method), decay in decays.items() if method == "random"} == {1.0}
    assert {decay for (_, method), decay in decays.items() if method != "random"} == {0.8}
    assert len(decays) == 4 * 4  # four fine-tuned benchmarks, HA-CM, MAE, MAMP and random


# A transfer run's encoder is the source's: it reads the source's pretraining input, not the target's.
def test_a_transfer_run_reads_its_source_encoders_input(paper_runs):
    transfers = {path: document for path, (_, document) in paper_runs.items() if "/transfer-" in path}
    assert transfers
    for path, document in transfers.items():
        _, bench, method, folder, _, _ = path.split("/")
        expected = evaluation_input(benchmark_of_folder(bench), method, folder)
        assert EvalConfig.from_dict(document).data.input == expected, path


def test_the_configs_as_written_variant_runs_those_benchmarks_at_120_frames(tmp_path):
    """Uncommenting the variant "configs_as_written" of config/paper.yaml pretrains (and so evaluates) HA-CM on
    NTU-60 x-view, NTU-120 x-set and PKU-MMD I at T 120 / t_patch 4, and changes nothing else."""
    lines = (REPO / "config" / "paper.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  # - source: variant configs_as_written"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("  #   "))
    variant = lines[:start] + [line.replace("  # ", "  ", 1) for line in lines[start:end]] + lines[end:]
    configfile = tmp_path / "paper_as_written.yaml"
    configfile.write_text("\n".join(variant) + "\n")
    runs = dry_run_documents(configfile)
    pretrainings = runs_of(runs, protocol="pretrain")
    assert len(pretrainings) == 6 * 3 + 13
    for (benchmark, method, _), document in pretrainings.items():
        model = PretrainConfig.from_dict(document).model
        frames, t_patch, decoder_depth, *_ = (HACM_PRETRAIN if method.startswith("hacm") else BASELINE_PRETRAIN)[benchmark]
        if method == "hacm" and benchmark in AS_WRITTEN:
            frames, t_patch = 120, 4
        assert (model.frames, model.t_patch, model.decoder_depth) == (frames, t_patch, decoder_depth), (benchmark, method)
    for (benchmark, method, folder), document in runs_of(runs, protocol="").items():
        if method == "random":
            expected = (120, 4) if benchmark in AS_WRITTEN else HACM_PRETRAIN[benchmark][:2]
            assert (document["model"]["frames"], document["model"]["t_patch"]) == expected, (benchmark, folder)


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


def test_the_workflow_resolves_every_run_through_hacm_recipes(paper_runs):
    """Issue 29: one resolver. Every document the workflow's dry run hands `hacm.configure` is the one
    hacm.recipes gives for that run, so the tests, the sweeps and `python -m hacm.recipes` see the same."""
    from hacm.recipes import Recipes
    from hacm.recipes.workflow_config import load_workflow_config

    recipes = Recipes(load_workflow_config(REPO / "config" / "paper.yaml"))
    for path, (kind, document) in paper_runs.items():
        _, bench, method, folder, seed, _ = path.split("/")
        benchmark, seed = benchmark_of_folder(bench), int(seed.removeprefix("seed"))
        resolved = (recipes.pretrain_document(benchmark, method, seed) if kind == "pretrain"
                    else recipes.evaluate_document(benchmark, method, folder, seed))
        assert resolved == document, path


def test_a_runs_document_is_one_command_away():
    result = subprocess.run([sys.executable, "-m", "hacm.recipes", "--configfile", "config/paper.yaml", "pretrain",
                             "ntu120-xsub", "hacm", "--seed", "2"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["seed"] == 2 and document["data"]["input"] == "velocity" and document["model"]["contrast_group"] == 128
    bad = subprocess.run([sys.executable, "-m", "hacm.recipes", "--configfile", "config/paper.yaml", "pretrain",
                          "ntu60-xsub", "hacm-nope"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "unknown ablation 'nope'" in bad.stderr
