"""The authors' published pretrained weights as evaluation encoders (hacm.release.weights), end to end: files
saved as their util/misc.py save_model saves them ({'model', 'optimizer', 'epoch', 'scaler', 'args':
argparse.Namespace}), read through the key map by `hacm.evaluate --encoder FILE.pth`, refused in one line when
they do not fit, and rows of the workflow's tables (`published_encoders`).

Without checkouts the files hold random weights of the key names and shapes of tests/data/release_keys.json;
with HACM_RELEASE_CHECKOUT / HACM_MAMP_CHECKOUT, state dicts written by the authors' own model classes, whose
evaluation models must then give hacm's encoder features."""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from snakemake.utils import validate

from hacm.evaluate.__main__ import main as evaluate_main
from hacm.files import file_sha256
from hacm.release.kinds import published_folder
from hacm.tables.layout import build_plan, plan_inputs
from hacm.tables.plan import PLAN_SCHEMA, PlanError
from hacm.tables.report import encoder_mismatch, make_report
from hacm.tables.schemas import first_error
from hacm.train.checkpoint import CheckpointError
from hacm.model.config import ModelConfig
from hacm.model.pretrainer import SkeletonEncoder
from hacm.train.encoder_file import load_encoder, save_encoder
from tests.conftest import REPO, TINY_ARCHITECTURE

KEYS = json.loads((Path(__file__).parent / "data" / "release_keys.json").read_text())
RELEASE_CHECKOUT = os.environ.get("HACM_RELEASE_CHECKOUT")
MAMP_CHECKOUT = os.environ.get("HACM_MAMP_CHECKOUT")
MODEL_CLASSES = {"release-hacm": "model_hacm.transformer.Transformer", "mamp": "model_mamp.transformer.Transformer",
                 "mae": "model_mae.transformer.Transformer"}
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
EVAL = {"seed": 0, "data": {"batch_size": 64}, "linear": {"epochs": 1}}


def saved_as_the_authors_do(path: Path, state: dict, *, model: str | None, model_args: dict | None = None) -> Path:
    """`state` in the layout of the authors' util/misc.py save_model (args None: a bare 'model')."""
    document = {"model": state}
    if model is not None:
        document.update({
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "weight_decay": 0.05, "params": [0, 1, 2]}]},
            "epoch": 399,
            "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000},
            "args": argparse.Namespace(model=model, model_args=model_args or {"num_heads": 8}, batch_size=32,
                                       output_dir="./output_dir/pretrain", mask_ratio=0.9, distributed=True),
        })
    torch.save(document, path)
    return path


def random_weights(shapes: dict, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) * 0.02 for key, shape in shapes.items()}


def shrunk(shapes: dict, *, dim: int = 32, depth: int = 1, patches: int = 8) -> dict:
    """The fixture's keys at a small size: D 256 -> dim (and its multiples), `depth` blocks, `patches` time
    patches; joints, t_patch and coordinates as they are."""
    widths = {256: dim, 768: 3 * dim, 1024: 4 * dim}
    result = {}
    for key, shape in shapes.items():
        block = re.match(r"^(decoder_)?blocks\.(\d+)\.", key)
        if block and int(block.group(2)) >= depth:
            continue
        shape = [widths.get(size, size) for size in shape]
        if key.endswith("temp_embed"):
            shape[1] = patches
        result[key] = shape
    return result


@pytest.mark.parametrize("kind, frames, t_patch, joints, hyperbolic", [
    ("release-hacm", 72, 3, 18, True), ("mamp", 120, 4, 25, False), ("mae", 120, 4, 25, False)])
def test_a_published_file_is_an_encoder_of_its_own_size(tmp_path, kind, frames, t_patch, joints, hyperbolic):
    weights = random_weights(KEYS[kind])
    path = saved_as_the_authors_do(tmp_path / "checkpoint-399.pth", weights, model=MODEL_CLASSES[kind])
    loaded = load_encoder(path)  # the kind from the keys (the release) or from args.model (MAMP / MAE)
    config = loaded.config
    assert (config.frames, config.t_patch, config.dim, config.depth, config.heads) == (frames, t_patch, 256, 8, 8)
    assert (config.joints_per_patch, config.hyperbolic, config.mlp_ratio) == (joints, hyperbolic, 4.0)
    assert loaded.method == {"release-hacm": "hacm", "mamp": "mamp", "mae": "mae"}[kind] + " (published weights)"
    assert loaded.sha256 == file_sha256(path) and loaded.path == str(path)
    state = loaded.encoder.state_dict()
    assert torch.equal(state["patch_embed.weight"], weights["joints_embed.proj.weight"])
    assert torch.equal(state["transformer.blocks.7.mlp.2.weight"], weights["blocks.7.mlp.fc2.weight"])
    assert torch.equal(state["transformer.norm.bias"], weights["norm.bias"])
    with torch.no_grad():
        features = loaded.encoder(torch.randn(1, 3, frames, 25, 2))
    assert features.shape == (1, 2, frames // t_patch, joints, 256) and torch.isfinite(features).all()


def test_a_bare_state_dict_from_a_ddp_wrapper_loads_with_its_kind_named(tmp_path):
    weights = {f"module.{key}": value for key, value in random_weights(shrunk(KEYS["mae"])).items()}
    path = saved_as_the_authors_do(tmp_path / "bare.pth", weights, model=None)
    with pytest.raises(CheckpointError, match="give --encoder-kind mamp or --encoder-kind mae"):
        load_encoder(path)
    loaded = load_encoder(path, kind="mae")
    assert loaded.method == "mae (published weights)" and loaded.config.depth == 1 and loaded.config.dim == 32
    torch.save(weights, tmp_path / "plain.pth")  # not even under 'model'
    assert load_encoder(tmp_path / "plain.pth", kind="mamp").config.frames == 32


def _without(shapes: dict, *keys: str) -> dict:
    return {key: value for key, value in shapes.items() if key not in keys}


@pytest.mark.parametrize("case, words", [
    ("missing", "missing blocks.0.attn.qkv.bias (hacm encoder.transformer.blocks.0.attn.qkv.bias)"),
    ("shape", "blocks.0.attn.proj.weight (hacm encoder.transformer.blocks.0.attn.proj.weight) has shape (32, 16)"),
    ("unknown", "keys the mamp model does not have: prompt.weight"),
    ("joints", "pos_embed has 20 joint tokens"),
    ("release as mamp", "holds the release's HA-CM keys"),
    ("mamp as release", "holds MAE / MAMP keys"),
    ("args disagree", "saved by model_mae.transformer.Transformer (its args.model), but the encoder kind given is"),
    ("pickled code", "it holds pickled code (posix.system), which is never loaded"),
    ("not theirs", "is not an encoder file written by hacm.pretrain, nor the authors' published weights"),
])
def test_files_that_do_not_fit_are_refused_in_one_line(tmp_path, case, words):
    mamp, kind, model = shrunk(KEYS["mamp"]), "mamp", MODEL_CLASSES["mamp"]
    shapes = {"missing": _without(mamp, "blocks.0.attn.qkv.bias"),
              "shape": {**mamp, "blocks.0.attn.proj.weight": [32, 16]}, "unknown": {**mamp, "prompt.weight": [4]},
              "joints": {**mamp, "pos_embed": [1, 1, 20, 32]},
              "release as mamp": shrunk(KEYS["release-hacm"])}.get(case, mamp)
    if case == "mamp as release":
        kind = "release-hacm"
    if case == "args disagree":
        model = MODEL_CLASSES["mae"]
    weights = random_weights(shapes)
    if case == "not theirs":
        weights = {"encoder.patch_embed.weight": torch.zeros(1)}
    path = saved_as_the_authors_do(tmp_path / "bad.pth", weights, model=model)
    if case == "pickled code":
        torch.save({"model": weights, "args": argparse.Namespace(hook=os.system)}, path)
    with pytest.raises(CheckpointError) as error:
        load_encoder(path, kind=kind)
    message = str(error.value)
    assert words in message and "\n" not in message, message


def test_a_hacm_encoder_file_takes_no_kind(tmp_path):
    path = tmp_path / "encoder.pt"
    save_encoder(path, SkeletonEncoder(ModelConfig(**TINY_ARCHITECTURE)), method="hacm", epoch=1, pretrain_config={})
    assert load_encoder(path).method == "hacm"
    with pytest.raises(CheckpointError, match="an encoder kind is given only for the authors' published weights"):
        load_encoder(path, kind="mamp")


@pytest.fixture(scope="module")
def small_mamp_file(tmp_path_factory) -> Path:
    """Random weights of MAMP's keys at D 32, depth 1, T 32 / t_patch 4, saved as MAMP saves them."""
    folder = tmp_path_factory.mktemp("published")
    return saved_as_the_authors_do(folder / "mamp-checkpoint-399.pth", random_weights(shrunk(KEYS["mamp"])),
                                   model=MODEL_CLASSES["mamp"], model_args={"num_heads": 4})


def evaluate(data: Path, encoder: Path, out: Path, *extra: str) -> int:
    config = out.parent / f"{out.name}.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump(EVAL))
    return evaluate_main(["--protocol", "linear", "--config", str(config), "--data", str(data), "--encoder",
                          str(encoder), "--out", str(out), "--no-progress", *extra])


@pytest.fixture(scope="module")
def published_run(synthetic_stores, small_mamp_file, tmp_path_factory) -> Path:
    """A linear evaluation of the small MAMP file on synthetic NTU-60 x-sub: its run folder."""
    out = tmp_path_factory.mktemp("published_run") / "linear"
    assert evaluate(synthetic_stores / "ntu60-xsub", small_mamp_file, out) == 0
    return out


def test_evaluate_records_published_weights(published_run, small_mamp_file):
    metrics = json.loads((published_run / "metrics.json").read_text())
    assert metrics["encoder"] == {"path": str(small_mamp_file), "sha256": file_sha256(small_mamp_file),
                                  "method": "mamp (published weights)"}
    assert metrics["protocol"] == "linear" and 0 <= metrics["top1"] <= 1


def test_evaluate_refuses_a_wrong_kind_and_a_kind_without_a_file(synthetic_stores, small_mamp_file, tmp_path):
    data = synthetic_stores / "ntu60-xsub"
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump(EVAL))
    for encoder, kind, code, words in ((small_mamp_file, "release-hacm", 1, "holds MAE / MAMP keys"),
                                       ("none", "mamp", 2, "--encoder-kind names the model of a published")):
        result = subprocess.run([sys.executable, "-m", "hacm.evaluate", "--protocol", "linear", "--config", str(config),
                                 "--data", str(data), "--encoder", str(encoder), "--encoder-kind", kind, "--out",
                                 str(tmp_path / "o"), "--no-progress"], capture_output=True, text=True, cwd=REPO)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == code and len(lines) == 1 and words in lines[0], result.stderr


PUBLISHED_ROW = {"key": "mamp_published", "label": "MAMP, published weights", "method": "published.mamp_published"}


def _plan(tmp_path: Path, run: Path, weights_file: Path) -> Path:
    plan = {"dataset": "synthetic", "tables": [{
        "name": "linear", "title": "Linear evaluation (top-1 %)", "metric": "top1", "protocol": "linear",
        "columns": [{"key": "ntu60-xsub", "label": "NTU-60 x-sub", "benchmark": "ntu60-xsub"}],
        "rows": [{**PUBLISHED_ROW, "cells": {"ntu60-xsub": [str(run / "metrics.json")]},
                  "weights": {"method": "mamp (published weights)", "files": {"ntu60-xsub": str(weights_file)}}}],
        "published": None}]}
    assert first_error(plan, PLAN_SCHEMA, "plan") is None
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def test_a_published_row_takes_only_its_own_file_s_results(published_run, small_mamp_file, tmp_path):
    make_report(_plan(tmp_path, published_run, small_mamp_file), None, tmp_path / "tables")
    rows = list(csv.DictReader(open(tmp_path / "tables" / "linear.csv", encoding="utf-8")))
    ours = next(row for row in rows if row["row"] == "mamp_published")
    assert ours["n"] == "1" and ours["status"] == "ok"
    other = saved_as_the_authors_do(tmp_path / "other.pth", random_weights(shrunk(KEYS["mamp"]), seed=1),
                                    model=MODEL_CLASSES["mamp"])
    with pytest.raises(PlanError, match=r"but this row's are .*other.pth \(sha256"):
        make_report(_plan(tmp_path, published_run, other), None, tmp_path / "tables2")


PUBLISHED = {"path": "/w/mamp.pth", "sha256": "ab" * 32, "method": "mamp (published weights)"}
ROW_WEIGHTS = {"method": "mamp (published weights)", "path": "/w/mamp.pth", "sha256": "ab" * 32}


@pytest.mark.parametrize("encoder, method, weights, wrong", [
    (PUBLISHED, "published.x", ROW_WEIGHTS, None),
    ({**PUBLISHED, "sha256": "cd" * 32}, "published.x", ROW_WEIGHTS, "but this row's are /w/mamp.pth"),
    ({**PUBLISHED, "method": "mae (published weights)"}, "published.x", ROW_WEIGHTS, "a 'mae (published weights)'"),
    ({"path": "results/ntu60_xsub/mamp/pretrain/seed0/encoder.pt", "sha256": "ab" * 32, "method": "mamp"},
     "published.x", ROW_WEIGHTS, "a 'mamp' encoder, but this row is 'mamp (published weights)'"),
    (PUBLISHED, "mamp", None, "a 'mamp (published weights)' encoder, but this row is 'mamp'"),
    (PUBLISHED, "random", None, "but this row is the random encoder"),
])
def test_cells_of_published_rows_must_be_of_their_weights(encoder, method, weights, wrong):
    found = encoder_mismatch(encoder, method, weights)
    assert found is None if wrong is None else wrong in found


def workflow_config(**changes) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(copy.deepcopy(changes))
    validate(config, str(SCHEMA), set_default=True)
    return config


ENCODERS = {"mamp_published": {"label": "MAMP, published weights", "kind": "mamp",
                               "files": {"ntu60-xsub": "weights/mamp-ntu60-xsub.pth", "pku1-xview": "weights/p.pth"}},
            "hacm_release": {"label": "HA-CM, the authors' weights", "kind": "release-hacm",
                             "files": {"ntu60-xsub": "weights/hacm.pth"}, "protocols": ["linear"]}}


def test_published_encoders_are_rows_of_the_linear_and_fine_tuning_tables():
    plan = build_plan(workflow_config(published_encoders=ENCODERS),
                      metrics="results/{bench}/{method}/{protocol}/seed{seed}/metrics.json",
                      pretrain_log="results/{bench}/{method}/pretrain/seed{seed}/metrics.jsonl")
    assert first_error(plan, PLAN_SCHEMA, "plan") is None
    tables = {table["name"]: table for table in plan["tables"]}
    linear = {row["key"]: row for row in tables["linear"]["rows"]}
    row = linear["mamp_published"]
    assert row["method"] == published_folder("mamp_published") == "published.mamp_published"
    assert row["weights"] == {"method": "mamp (published weights)", "files": ENCODERS["mamp_published"]["files"]}
    assert row["cells"]["pku1-xview"] == ["results/pku1_xview/published.mamp_published/linear/seed0/metrics.json"]
    assert "pku1-xview" in [column["key"] for column in tables["linear"]["columns"]]  # not a paper column
    assert linear["hacm_release"]["weights"]["method"] == "hacm (published weights)"
    assert {row["key"] for row in tables["finetune"]["rows"]} >= {"mamp_published"}
    assert "hacm_release" not in {row["key"] for row in tables["finetune"]["rows"]}  # protocols: [linear]
    assert not any("weights" in row for name in ("semi", "transfer", "ablations") for row in tables[name]["rows"])
    assert "weights/mamp-ntu60-xsub.pth" in plan_inputs(plan)


@pytest.mark.parametrize("name, entry", [
    ("mamp", ENCODERS["mamp_published"]),  # a method's own row key
    ("mamp-published", ENCODERS["mamp_published"]),  # a '-' is an ablation's folder
    ("x", {**ENCODERS["mamp_published"], "kind": "moco"}),
    ("x", {**ENCODERS["mamp_published"], "files": {}}),
    ("x", {**ENCODERS["mamp_published"], "protocols": ["semi"]}),
])
def test_the_schema_refuses_bad_published_encoders(name, entry):
    with pytest.raises(Exception, match="published_encoders"):
        workflow_config(published_encoders={name: entry})


def test_the_workflow_evaluates_published_weights_with_their_kind(tmp_path):
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    weights = tmp_path / "mamp.pth"
    weights.write_bytes(b"planned only")
    config["published_encoders"] = {"mamp_published": {"label": "MAMP, published weights", "kind": "mamp",
                                                       "files": {"ntu60-xsub": str(weights)}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
                             str(tmp_path), "-n", "-p", "protocol_linear", "protocol_finetune", "--configfile",
                             str(path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    commands = [line for line in result.stdout.splitlines() if "hacm.evaluate" in line and "published." in line]
    assert {"--protocol linear", "--protocol finetune"} <= {re.search(r"--protocol \w+", c).group(0) for c in commands}
    assert all(f"--encoder {weights} --encoder-kind mamp" in command for command in commands), commands
    run_yaml = [line for line in result.stdout.splitlines()
                if "hacm.configure evaluate" in line and "published." in line]
    assert run_yaml and all('"method":"mamp"' in line for line in run_yaml)  # MAMP's evaluation recipe


def _features_equal(path: Path, evaluation_model, x: torch.Tensor) -> None:
    from hacm.release.encoder_rows import features_row
    from hacm.release.weights import read_checkpoint

    loaded = load_encoder(path)
    state = read_checkpoint(path)["model"]
    row = features_row("published", evaluation_model, state, loaded.encoder, x)
    assert row.passed and row.verdict == "equal", row


@pytest.mark.skipif(not RELEASE_CHECKOUT, reason="set HACM_RELEASE_CHECKOUT to a git clone of YinxPeng/HA-CM-main to "
                    "read a state dict written by the release's own model class")
def test_the_release_s_own_weights_are_its_evaluation_model_s_encoder(tmp_path, synthetic_stores):
    from hacm.release.checkout import RELEASE_MODEL_ARGS, release_eval_model, release_model
    from hacm.release.pairs import perturb_biases_and_norms, synthetic_batch

    args = {**RELEASE_MODEL_ARGS, "depth": 1, "decoder_depth": 1, "num_frames": 24}  # D 256: the release's l1 / l2
    torch.manual_seed(0)
    theirs = release_model(Path(RELEASE_CHECKOUT), model_args=args)
    perturb_biases_and_norms(theirs, seed=0)
    path = saved_as_the_authors_do(tmp_path / "hacm.pth", theirs.state_dict(),
                                   model="model_hacm.transformer.Transformer", model_args=args)
    _features_equal(path, release_eval_model(Path(RELEASE_CHECKOUT), model_args=args), synthetic_batch(24))
    assert evaluate(synthetic_stores / "ntu60-xsub", path, tmp_path / "linear") == 0
    assert json.loads((tmp_path / "linear" / "metrics.json").read_text())["encoder"]["method"] == \
        "hacm (published weights)"


@pytest.mark.skipif(not MAMP_CHECKOUT, reason="set HACM_MAMP_CHECKOUT to a checkout of maoyunyao/MAMP to read a state "
                    "dict written by MAMP's own model class")
def test_mamp_s_own_weights_are_its_evaluation_model_s_encoder(tmp_path):
    from hacm.release.checkout import MAMP_MODEL_ARGS, mamp_eval_model, mamp_model
    from hacm.release.pairs import perturb_biases_and_norms, synthetic_batch

    args = {**MAMP_MODEL_ARGS, "dim_feat": 64, "decoder_dim_feat": 64, "depth": 2, "decoder_depth": 1, "num_frames": 40}
    torch.manual_seed(0)
    theirs = mamp_model(Path(MAMP_CHECKOUT), "mamp", model_args=args)
    perturb_biases_and_norms(theirs, seed=0)
    path = saved_as_the_authors_do(tmp_path / "mamp.pth", theirs.state_dict(),
                                   model="model_mamp.transformer.Transformer", model_args=args)
    _features_equal(path, mamp_eval_model(Path(MAMP_CHECKOUT), model_args=args), synthetic_batch(40))
