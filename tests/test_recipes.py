"""The documents hacm.recipes resolves for every run, pinned without running Snakemake.

config/paper.yaml resolves, for every benchmark and protocol, to the release's recipe (docs/method.md §3, §4),
and config/config.yaml to the embedded recipe (docs/notes/2026-12-embedded-recipe.md), overrides and ablations
included. The values below are written out from the release's files (config/README.md names each one) and the
notes, not read from the configs, so that a slip like the former 13x lower learning rate fails here. The runs
are enumerated as the workflow's tables plan enumerates them and resolved by hacm.recipes, the resolver the
workflow calls for every run's document (one dry run, on config/smoke.yaml, shows that it does).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from hacm.benchmarks import BENCHMARKS
from hacm.configure.__main__ import check
from hacm.evaluate.config import EvalConfig, load_eval_config
from hacm.recipes import RecipeError, Recipes
from hacm.recipes.workflow_config import load_workflow_config
from hacm.runs import bench_folder, benchmark_of_folder
from hacm.tables.layout import build_plan, plan_inputs, pretraining_runs
from hacm.pretrain.config import PretrainConfig, load_pretrain_config
from hacm.train.stage_config import RECORD_KEY
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

# The ablations' own pretraining keys (the paper's nine rows, the release's objective, and in config/paper.yaml
# three rows beyond the paper): each ablation run is HA-CM's run on the ablations' benchmark with these changed.
ABLATIONS = {
    "euclidean": {"hyperbolic": False}, "no_temporal": {"temporal_criterion": "random"},
    "no_spatial": {"spatial_criterion": "random"}, "no_cross": {"masking": "single", "contrast_weight": 0.0},
    "no_contrast": {"contrast_weight": 0.0}, "curvature_0.5": {"curvature": 0.5}, "curvature_2": {"curvature": 2.0},
    "mask_ratio_0.8": {"mask_ratio": 0.8}, "mask_ratio_0.95": {"mask_ratio": 0.95},
    "release_objective": {"release_objective": True},
}
PAPER_ABLATIONS = ABLATIONS | {
    "minmax_0.25": {"score_scaling": "minmax", "score_temperature": 0.25},
    "minmax_0.5": {"score_scaling": "minmax", "score_temperature": 0.5}, "embedding_clip_1": {"embedding_clip": 1.0},
}

# The embedded recipe (config/config.yaml; docs/notes/2026-12-embedded-recipe.md): a small model, lr 0.05 per 256
# at batch 32 for 12 epochs (30 on PKU-MMD's ~150 training samples); the converging linear probe (lr 1.0 per
# 256 at batch 64) and fine-tuning at lr 0.03 per 256, batch 64 (PKU-MMD: lr 0.1 at batch 16).
EMBEDDED_MODEL = {"frames": 48, "t_patch": 3, "dim": 64, "depth": 2, "heads": 4, "decoder_dim": 64,
                  "decoder_depth": 1, "decoder_heads": 4}
EMBEDDED_PRETRAIN_EPOCHS = {b: 30 if b.startswith("pku") else 12 for b in HACM_PRETRAIN}
EMBEDDED_FINETUNE = {b: (16, 0.1) if b.startswith("pku") else (64, 0.03) for b in HACM_PRETRAIN}

METRICS = "results/{bench}/{method}/{protocol}/seed{seed}/metrics.json"
PRETRAIN_LOG = "results/{bench}/{method}/pretrain/seed{seed}/metrics.jsonl"


def resolved_runs(configfile) -> dict[str, tuple[str, dict]]:
    """run.yaml path -> (kind, document) for every run of a configuration: each pretraining of each seed and
    each evaluation whose metrics.json its tables read (hacm.tables.layout), resolved by hacm.recipes after the
    checks the workflow makes while it parses."""
    config = load_workflow_config(configfile)
    recipes = Recipes(config)
    recipes.check(pretraining_runs(config), BENCHMARKS)
    runs = {f"results/{bench_folder(benchmark)}/{method}/pretrain/seed{seed}/run.yaml":
            ("pretrain", recipes.pretrain_document(benchmark, method, seed))
            for benchmark, method in pretraining_runs(config) for seed in config["seeds"]}
    for path in plan_inputs(build_plan(config, metrics=METRICS, pretrain_log=PRETRAIN_LOG)):
        if path.endswith("/metrics.json"):
            _, bench, method, protocol, seed, _ = path.split("/")
            document = recipes.evaluate_document(benchmark_of_folder(bench), method, protocol,
                                                 int(seed.removeprefix("seed")))
            runs[path.replace("/metrics.json", "/run.yaml")] = ("evaluate", document)
    return runs


@pytest.fixture(scope="module")
def paper_runs() -> dict[str, tuple[str, dict]]:
    return resolved_runs(REPO / "config" / "paper.yaml")


@pytest.fixture(scope="module")
def embedded_runs() -> dict[str, tuple[str, dict]]:
    return resolved_runs(REPO / "config" / "config.yaml")


def pretraining_input(benchmark: str, method: str) -> str:
    """What an encoder was pretrained on (an ablation counts as hacm; ablations run on NTU-60 x-sub)."""
    return "velocity" if method.split("-")[0] == "hacm" and benchmark in HACM_VELOCITY else "coordinates"


def evaluation_input(benchmark: str, method: str, folder: str) -> str:
    """An encoder is evaluated on what it was pretrained on; a transfer run's encoder is its source's."""
    if method == "random":
        return "coordinates"
    source = benchmark_of_folder(folder.removeprefix("transfer-from-")) if folder.startswith("transfer-") else benchmark
    return pretraining_input(source, method)


def runs_of(runs, *, protocol: str) -> dict[tuple[str, str, str], dict]:
    """(benchmark, method, folder) -> document of seed 0's runs of one protocol folder kind."""
    found = {}
    for path, (_, document) in runs.items():
        _, bench, method, folder, seed, _ = path.split("/")
        if folder.startswith(protocol) and seed == "seed0":
            found[(benchmark_of_folder(bench), method, folder)] = document
    return found


def evaluations(runs) -> dict[str, dict]:
    return {path: document for path, (kind, document) in runs.items() if kind == "evaluate"}


# --- config/paper.yaml: the release's recipe --------------------------------------------------------------


def test_every_pretraining_run_uses_the_release_recipe(paper_runs):
    runs = runs_of(paper_runs, protocol="pretrain")
    assert len(runs) == 6 * 3 + 13  # HA-CM, MAE, MAMP on six benchmarks; thirteen ablations on NTU-60 x-sub
    assert {key[0] for key in runs if "-" in key[1]} == {"ntu60-xsub"}
    for (benchmark, method, _), document in runs.items():
        base = method.split("-")[0]
        frames, t_patch, decoder_depth, epochs, batch = (HACM_PRETRAIN if base == "hacm" else BASELINE_PRETRAIN)[benchmark]
        resolved = PretrainConfig.from_dict(document)  # defaults and the method's preset filled in
        model, optim = resolved.model, resolved.optim
        where = f"{benchmark} {method}"
        assert document["method"] == base and document["seed"] == 0, where
        assert (model.frames, model.t_patch, model.decoder_depth) == (frames, t_patch, decoder_depth), where
        assert resolved.data.input == pretraining_input(benchmark, method), where
        assert (model.dim, model.depth, model.heads, model.mlp_ratio) == (256, 8, 8, 4.0), where
        if base == "hacm":
            assert model.contrast_group == HACM_CONTRAST_GROUP[benchmark], where
            assert (batch * model.num_bodies) % model.contrast_group == 0, where
        assert optim.epochs == epochs and optim.warmup_epochs == 20 and optim.weight_decay == 0.05, where
        assert optim.clip_grad is None and optim.betas == (0.9, 0.95) and optim.precision == "fp32", where
        assert (resolved.monitor.knn_every, resolved.monitor.log_every) == (20, 50), where
        if method in ("hacm", "mae", "mamp"):
            assert model.mask_ratio == 0.9 and model.score_scaling == "max", where
        assert check("pretrain", document) == {"global_batch": batch, "lr_absolute": 1e-3,
                                               "lr_per_256": pytest.approx(1e-3 * 256 / batch),
                                               "min_lr_absolute": 5e-4}, where
        if base == "mamp":
            assert model.score_max_fraction == MAMP_TAU[benchmark] and not model.keep_high_scores, where
        if method == "hacm":
            assert model.score_max_fraction == 0.9 and model.keep_high_scores and model.embedding_clip is None, where


def test_every_seed_resolves_to_the_same_recipe(paper_runs):
    """Seeds 0, 1, 2 of a run differ in their seed only."""
    by_run: dict[tuple, list[dict]] = {}
    for path, (_, document) in paper_runs.items():
        _, bench, method, folder, seed, _ = path.split("/")
        assert document["seed"] == int(seed.removeprefix("seed")), path
        by_run.setdefault((bench, method, folder), []).append({**document, "seed": None})
    assert {len(documents) for documents in by_run.values()} == {3}
    assert all(documents[0] == documents[1] == documents[2] for documents in by_run.values())


def test_an_ablation_is_hacms_run_with_its_keys_changed(paper_runs, embedded_runs):
    for runs, ablations in ((paper_runs, PAPER_ABLATIONS), (embedded_runs, ABLATIONS)):
        pretrainings = runs_of(runs, protocol="pretrain")
        hacm = pretrainings[("ntu60-xsub", "hacm", "pretrain")]
        assert {m.removeprefix("hacm-") for _, m, _ in pretrainings if m.startswith("hacm-")} == set(ablations)
        for name, keys in ablations.items():
            expected = {**hacm, "model": {**hacm["model"], **keys}}
            assert pretrainings[("ntu60-xsub", f"hacm-{name}", "pretrain")] == expected, name
            PretrainConfig.from_dict(expected)  # a valid configuration
        # Their linear evaluations are HA-CM's (an ablation's encoder is HA-CM's architecture and input).
        linear = runs_of(runs, protocol="linear")
        for name in ablations:
            assert linear[("ntu60-xsub", f"hacm-{name}", "linear")] == linear[("ntu60-xsub", "hacm", "linear")], name


def test_every_evaluation_uses_the_release_protocol(paper_runs):
    runs = evaluations(paper_runs)
    assert runs
    for path, document in runs.items():
        _, bench, method, folder, _, _ = path.split("/")
        benchmark = benchmark_of_folder(bench)
        rates = check("evaluate", document)
        assert document["monitor"]["test_every"] == 1, path  # the best epoch is what the release reports
        if folder == "linear":
            batch, lr = LINEAR[benchmark]
            # A run holds only the sections its protocol reads (data: none for the random rows of the paper).
            assert {"linear", "monitor", "method", "model", "seed"} <= set(document) <= {"data", "linear", "monitor",
                                                                                   "method", "model", "seed"}, path
            assert document["linear"]["augment"] is True and document["linear"]["epochs"] == 100, path
            assert (document["linear"]["momentum"], document["linear"]["weight_decay"]) == (0.9, 0.0), path
            assert (rates["global_batch"], rates["lr_absolute"]) == (batch, lr), path
        else:
            finetune = document["finetune"]
            assert "linear" not in document, path
            assert (rates["global_batch"], rates["lr_absolute"], rates["min_lr_absolute"]) == FINETUNE, path
            assert (finetune["epochs"], finetune["warmup_epochs"], finetune["layer_decay"], finetune["drop_path"],
                    finetune["label_smoothing"], finetune["hidden"]) == (100, 5, LAYER_DECAY.get(method, 0.8), 0.3,
                                                                         0.1, 2048), path
        if not folder.startswith("transfer-"):  # transfer: test_a_transfer_run_reads_its_source_encoders_input
            assert EvalConfig.from_dict(document).data.input == evaluation_input(benchmark, method, folder), path
        if method == "random":  # the "no pretraining" rows use HA-CM's architecture on that benchmark
            frames, t_patch, *_ = HACM_PRETRAIN[benchmark]
            assert (document["model"]["frames"], document["model"]["t_patch"]) == (frames, t_patch), path
            assert document["method"] == "hacm", path
        else:
            assert document["method"] == method.split("-")[0], path


def test_the_paper_plan_evaluates_what_the_paper_reports(paper_runs):
    """Every protocol's runs of seed 0: the six linear benchmarks with HA-CM, MAE, MAMP and random (and the
    ablations), four fine-tuned benchmarks, semi-supervised 1 % / 10 % with five draws, two transfers."""
    folders = {}
    for benchmark, method, folder in runs_of(paper_runs, protocol=""):
        folders.setdefault(re.sub(r"\d+-draw\d+$", "", folder), set()).add((benchmark, method, folder))
    assert len(folders["linear"]) == 6 * 4 + 13 and len(folders["finetune"]) == 4 * 4
    assert len(folders["semi"]) == 2 * 2 * 5 * 2  # two benchmarks, two fractions, five draws, HA-CM and MAMP
    assert len(folders["transfer-from-ntu60_xsub"]) == len(folders["transfer-from-ntu120_xsub"]) == 2
    for benchmark, method, folder in folders["semi"]:
        fraction, draw = re.fullmatch(r"semi(\d+)-draw(\d)", folder).groups()
        document = runs_of(paper_runs, protocol=folder)[(benchmark, method, folder)]
        assert document["semi"] == {"fraction": int(fraction) / 100, "draw": int(draw)}, folder


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
    inputs = {folder: document["data"]["input"] for (_, method, folder), document in
              runs_of(paper_runs, protocol="transfer").items() if method == "hacm"}
    assert inputs == {"transfer-from-ntu60_xsub": "coordinates", "transfer-from-ntu120_xsub": "velocity"}


def test_the_configs_as_written_variant_runs_those_benchmarks_at_120_frames(tmp_path):
    """Uncommenting the variant "configs_as_written" of config/paper.yaml pretrains (and so evaluates) HA-CM on
    NTU-60 x-view, NTU-120 x-set and PKU-MMD I at T 120 / t_patch 4, and changes nothing else."""
    lines = (REPO / "config" / "paper.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  # - source: variant configs_as_written"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("  #   "))
    variant = lines[:start] + [line.replace("  # ", "  ", 1) for line in lines[start:end]] + lines[end:]
    configfile = tmp_path / "paper_as_written.yaml"
    configfile.write_text("\n".join(variant) + "\n")
    runs = resolved_runs(configfile)
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


# --- config/config.yaml: the embedded recipe --------------------------------------------------------------


def test_every_embedded_pretraining_uses_the_embedded_recipe(embedded_runs):
    runs = runs_of(embedded_runs, protocol="pretrain")
    assert len(runs) == 6 + 1 + 1 + 10  # HA-CM on six benchmarks, MAE and MAMP on NTU-60 x-sub, ten ablations
    for (benchmark, method, _), document in runs.items():
        where = f"{benchmark} {method}"
        resolved = PretrainConfig.from_dict(document)
        assert {key: document["model"][key] for key in EMBEDDED_MODEL} == EMBEDDED_MODEL, where
        assert resolved.data.batch_size == 32 and resolved.data.input == "coordinates", where
        optim = resolved.optim
        assert (optim.epochs, optim.warmup_epochs, optim.weight_decay, optim.precision) == (
            EMBEDDED_PRETRAIN_EPOCHS[benchmark], 2, 0.05, "fp32"), where
        assert check("pretrain", document) == {"global_batch": 32, "lr_absolute": pytest.approx(0.05 * 32 / 256),
                                               "lr_per_256": pytest.approx(0.05),
                                               "min_lr_absolute": pytest.approx(1e-4 * 32 / 256)}, where
        assert (resolved.monitor.knn_every, resolved.monitor.log_every) == (6, 5), where


def test_every_embedded_evaluation_uses_the_embedded_protocol(embedded_runs):
    runs = evaluations(embedded_runs)
    # Linear: HA-CM and random on six benchmarks, MAE and MAMP on one, ten ablations; fine-tune: HA-CM and random
    # on two; semi: two fractions x two draws; transfer: two sources.
    assert len(runs) == 6 * 2 + 2 + 10 + 2 * 2 + 2 * 2 + 2
    for path, document in runs.items():
        _, bench, method, folder, _, _ = path.split("/")
        benchmark = benchmark_of_folder(bench)
        rates = check("evaluate", document)
        # data.batch_size is the inference batch; each protocol trains at its own batch_size.
        assert document["data"]["batch_size"] == 64 and document["monitor"] == {"test_every": 1}, path
        assert EvalConfig.from_dict(document).data.input == "coordinates", path
        if folder == "linear":
            assert document["linear"] == {"epochs": 100, "lr": 1.0, "batch_size": 64}, path
            assert (rates["global_batch"], rates["lr_absolute"]) == (64, pytest.approx(1.0 * 64 / 256)), path
        else:
            batch, lr = EMBEDDED_FINETUNE[benchmark]
            assert document["finetune"] == {"epochs": 12, "warmup_epochs": 2, "lr": lr, "min_lr": 1e-5,
                                            "drop_path": 0.1, "hidden": 256, "batch_size": batch}, path
            assert rates == {"global_batch": batch, "lr_absolute": pytest.approx(lr * batch / 256),
                             "lr_per_256": pytest.approx(lr), "min_lr_absolute": pytest.approx(1e-5 * batch / 256)}, path
        assert {key: document["model"][key] for key in EMBEDDED_MODEL} == EMBEDDED_MODEL, path


# --- the resolver's checks -----------------------------------------------------------------------------


def config_with(**changes) -> dict:
    """config/config.yaml with top-level keys replaced, validated as the workflow validates it."""
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(changes)
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    return config


@pytest.mark.parametrize("section, change, words", [
    ("evaluate", {"linear": {"batch_size": None}}, "config: evaluate (ntu60-xsub, linear): linear.batch_size: must be set"),
    ("evaluate", {"finetune": {"batch_size": 0}}, "config: evaluate (ntu60-xsub, finetune): finetune.batch_size: must be set"),
    ("evaluate", {"linear": {"lr": -1.0}}, "config: evaluate (ntu60-xsub, linear): linear.lr"),
    ("pretrain", {"optim": {"lr_batch": 0}}, "config: pretrain (ntu60-xsub, hacm): optim.lr_batch"),
    ("pretrain", {"model": {"heads": 5}}, "config: pretrain (ntu60-xsub, hacm): model"),
])
def test_the_check_refuses_a_bad_value_naming_the_run_and_the_key(section, change, words):
    config = config_with(**{section: change})
    with pytest.raises(RecipeError) as error:
        Recipes(config).check(pretraining_runs(config), BENCHMARKS)
    assert str(error.value).startswith(words) and "\n" not in str(error.value)


def test_an_unknown_ablation_or_published_encoder_is_a_one_line_error():
    recipes = Recipes(config_with())
    with pytest.raises(RecipeError, match=r"^unknown ablation 'nope' in 'hacm-nope'; known: euclidean, "):
        recipes.pretrain_document("ntu60-xsub", "hacm-nope", 0)
    with pytest.raises(RecipeError, match=r"no published encoder 'x' in the config's published_encoders \(it has: none\)"):
        recipes.evaluate_document("ntu60-xsub", "published.x", "linear", 0)


def test_overrides_lay_over_in_order_and_published_weights_follow_their_kinds_recipe():
    overrides = [{"methods": ["mamp"], "evaluate": {"linear": {"lr": 0.5, "epochs": 7}}},
                 {"benchmarks": ["ntu60-xsub"], "methods": ["mamp"], "evaluate": {"linear": {"lr": 0.25}}},
                 {"methods": ["random"], "evaluate": {"finetune": {"layer_decay": 1.0}}}]
    published = {"theirs": {"label": "MAMP, published weights", "kind": "mamp", "files": {"ntu60-xsub": "w.pth"}}}
    recipes = Recipes(config_with(overrides=overrides, published_encoders=published))
    theirs = recipes.evaluate_document("ntu60-xsub", "published.theirs", "linear", 0)
    assert theirs["method"] == "mamp" and theirs["linear"] == {"epochs": 7, "lr": 0.25, "batch_size": 64}
    assert "input" not in theirs["data"]  # published weights: no pretraining of ours to read it from
    assert recipes.evaluate_document("ntu60-xview", "mamp", "linear", 0)["linear"]["lr"] == 0.5
    assert recipes.evaluate_document("ntu60-xsub", "hacm", "linear", 0)["linear"]["lr"] == 1.0
    assert recipes.evaluate_document("ntu60-xsub", "random", "finetune", 0)["finetune"]["layer_decay"] == 1.0
    assert "layer_decay" not in recipes.evaluate_document("ntu60-xsub", "hacm", "finetune", 0)["finetune"]


# --- the command, the stages and the workflow -----------------------------------------------------------


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
    assert load_pretrain_config(out).optim.scaled_lr(64) == pytest.approx((1e-3, 5e-4))


def recipes_command(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hacm.recipes", *arguments], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_a_runs_document_is_one_command_away_and_is_a_stages_config(tmp_path):
    """`python -m hacm.recipes ... > run.yaml` writes what `python -m hacm.pretrain / hacm.evaluate --config
    run.yaml` read as it is (tests/test_run_errors.py runs the stages on such files)."""
    result = recipes_command("--configfile", "config/paper.yaml", "pretrain", "ntu120-xsub", "hacm", "--seed", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# python -m hacm.recipes --configfile config/paper.yaml pretrain ntu120-xsub")
    document = yaml.safe_load(result.stdout)
    assert document["seed"] == 2 and document["data"]["input"] == "velocity" and document["model"]["contrast_group"] == 128
    assert document == Recipes(load_workflow_config(REPO / "config" / "paper.yaml")).pretrain_document(
        "ntu120-xsub", "hacm", 2)
    (tmp_path / "pretrain.yaml").write_text(result.stdout)
    assert load_pretrain_config(tmp_path / "pretrain.yaml") == PretrainConfig.from_dict(document)
    # 1e-05 and the like come back as numbers (YAML 1.1 reads 1e-05 without a dot as text).
    result = recipes_command("evaluate", "ntu60-xsub", "hacm", "finetune")
    assert result.returncode == 0, result.stderr
    (tmp_path / "finetune.yaml").write_text(result.stdout)
    loaded = load_eval_config(tmp_path / "finetune.yaml")
    embedded = Recipes(load_workflow_config(REPO / "config" / "config.yaml"))
    assert loaded == EvalConfig.from_dict(embedded.evaluate_document("ntu60-xsub", "hacm", "finetune", 0))
    assert loaded.finetune.min_lr == 1e-5 and loaded.finetune.batch_size == 64 and loaded.data.batch_size == 64
    bad = recipes_command("--configfile", "config/paper.yaml", "pretrain", "ntu60-xsub", "hacm-nope")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "unknown ablation 'nope'" in bad.stderr


COMMAND = re.compile(r"python -m hacm\.configure (pretrain|evaluate) --json ('.*?') --out (\S+)")


def test_the_workflow_resolves_every_run_through_hacm_recipes(tmp_path):
    """Issue 29: one resolver. The workflow's dry run on config/smoke.yaml hands `hacm.configure` exactly the runs
    and documents that hacm.recipes gives (as enumerated above), so the tests, the sweeps, `python -m hacm.recipes`
    and the workflow see the same."""
    # In an empty working directory, so that no run of an earlier workflow is left out as done.
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
                             str(tmp_path), "-n", "-p", "--cores", "1", "all_tables", "--configfile",
                             str(REPO / "config" / "smoke.yaml")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    workflow = {out: (kind, json.loads(shlex.split(quoted)[0])) for kind, quoted, out in COMMAND.findall(result.stdout)}
    assert workflow and workflow == resolved_runs(REPO / "config" / "smoke.yaml")
