"""`python -m hacm.evaluate`: every protocol end to end, metrics schema, subsets, bad encoder files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hacm.evaluate.config import EvalConfig, FinetuneConfig, LinearConfig
from hacm.evaluate.metrics import best_test_epoch
from hacm.evaluate.protocols import resolve_optimisation
from hacm.evaluate.schema import validate_metrics
from hacm.evaluate.subsets import per_class_subset, subset_seed
from hacm.evaluate.__main__ import main as evaluate_main
from hacm.config import ConfigError
from tests.conftest import TINY_ARCHITECTURE

EVAL = {
    "seed": 0,
    "model": TINY_ARCHITECTURE,
    "data": {"batch_size": 64},
    "linear": {"epochs": 3},
    "finetune": {"epochs": 2, "warmup_epochs": 1, "lr": 1e-3, "hidden": 64, "drop_path": 0.1},
    "semi": {"fraction": 0.1},
}


@pytest.fixture(scope="module")
def encoder_file(tiny_pretraining) -> Path:
    return tiny_pretraining / "encoder.pt"


@pytest.fixture()
def eval_config(tmp_path) -> Path:
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(EVAL))
    return path


def evaluate(protocol, config, data, encoder, out, *extra) -> int:
    return evaluate_main(["--protocol", protocol, "--config", str(config), "--data", str(data), "--encoder",
                          str(encoder), "--out", str(out), "--no-progress", *extra])


@pytest.mark.parametrize("protocol", ["linear", "finetune", "semi", "transfer"])
def test_each_protocol_runs_end_to_end(protocol, synthetic_stores, encoder_file, eval_config, tmp_path):
    data = synthetic_stores / ("pku2-xsub" if protocol == "transfer" else "ntu60-xsub")
    out = tmp_path / protocol
    assert evaluate(protocol, eval_config, data, encoder_file, out) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    validate_metrics(metrics)
    assert metrics["protocol"] == protocol and metrics["num_test"] > 0
    assert metrics["encoder"]["sha256"] and len(metrics["encoder"]["sha256"]) == 64
    assert metrics["mode"] == ("cached-features" if protocol == "linear" else "finetune")
    assert (out / "confusion.png").stat().st_size > 1000 and (out / "checkpoint.pt").exists()
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == metrics["num_test"]
    assert np.isclose(np.mean([int(r["correct"]) for r in rows]), metrics["top1"])
    if protocol == "semi":
        assert metrics["semi"]["subset_size"] == metrics["num_train"] < 100
        assert metrics["semi"]["classes_covered"] == metrics["num_classes"]
    # No training batch given: the protocol's default (the release's 256 / 48, never data.batch_size, the
    # inference batch), capped at the training samples, and recorded once: the batch that ran.
    section = "linear" if protocol == "linear" else "finetune"
    settings = EVAL[section]
    default = (LinearConfig if protocol == "linear" else FinetuneConfig)().batch_size
    batch = min(default, metrics["num_train"])
    assert metrics["optimisation"]["global_batch"] == batch and metrics["config"][section]["batch_size"] == default
    assert metrics["optimisation"]["lr_absolute"] == pytest.approx(settings.get("lr", 0.1) * batch / 256)
    assert metrics["optimisation"]["lr_per_256"] == pytest.approx(settings.get("lr", 0.1))
    # The test split is scored only at the end (monitor.test_every 0): best = last.
    epochs = settings["epochs"]
    assert metrics["best_top1"] == metrics["top1"] and metrics["best_epoch"] == metrics["last_epoch"] == epochs


def test_random_encoder_and_rerun(synthetic_stores, eval_config, tmp_path):
    data = synthetic_stores / "ntu60-xsub"
    assert evaluate("linear", eval_config, data, "none", tmp_path / "random") == 0
    first = json.loads((tmp_path / "random" / "metrics.json").read_text())
    assert first["encoder"]["sha256"] is None and "random init" in first["encoder"]["method"]
    assert evaluate("linear", eval_config, data, "none", tmp_path / "random") == 0  # resumes: nothing left to train
    assert json.loads((tmp_path / "random" / "metrics.json").read_text())["top1"] == first["top1"]


def test_release_recipes_resolve_to_their_absolute_learning_rates():
    config = EvalConfig.from_dict({"data": {"batch_size": 64},
                                   "linear": {"lr": 0.1, "lr_batch": 256, "batch_size": 256},
                                   "finetune": {"lr": 3.0e-4, "min_lr": 1.0e-5, "lr_batch": 48, "batch_size": 48}})
    linear = resolve_optimisation(config.linear, samples=40_000)
    assert (linear.global_batch, linear.lr_absolute, linear.steps_per_epoch) == (256, pytest.approx(0.1), 156)
    finetune = resolve_optimisation(config.finetune, samples=40_000)
    assert finetune.global_batch == 48 and finetune.lr_absolute == pytest.approx(3.0e-4)
    assert finetune.min_lr_absolute == pytest.approx(1.0e-5)
    assert finetune.record()["lr_per_256"] == pytest.approx(3.0e-4 * 256 / 48)
    # NTU-60 x-sub 1 % (about 400 samples) makes 8 steps an epoch at batch 48; a subset under the batch one.
    assert resolve_optimisation(config.finetune, samples=401).steps_per_epoch == 8
    small = resolve_optimisation(config.finetune, samples=30)
    assert (small.global_batch, small.steps_per_epoch) == (30, 1)
    assert small.lr_absolute == pytest.approx(3.0e-4 * 30 / 48)
    # No batch key given: the release's global batches (linear 256, fine-tune 48) with lr per 256, whatever
    # data.batch_size (evaluation's inference batch) says.
    defaults = EvalConfig.from_dict({"data": {"batch_size": 64}})
    linear = resolve_optimisation(defaults.linear, samples=1000)
    assert (linear.global_batch, linear.lr_absolute) == (256, pytest.approx(0.1))
    finetune = resolve_optimisation(defaults.finetune, samples=1000)
    assert (finetune.global_batch, finetune.lr_absolute) == (48, pytest.approx(5e-4 * 48 / 256))


@pytest.mark.parametrize("section, key, value", [("linear", "batch_size", 0), ("finetune", "batch_size", -48),
                                                 ("linear", "batch_size", None), ("finetune", "batch_size", None),
                                                 ("linear", "lr_batch", 0), ("finetune", "lr_batch", 2.5),
                                                 ("finetune", "lr_batch", None)])
def test_bad_batch_keys_are_one_line_errors(section, key, value):
    with pytest.raises(ConfigError, match=rf"^{section}\.{key}: ") as error:
        EvalConfig.from_dict({section: {key: value}})
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("section, loop", [("linear", "the linear probe's training"), ("finetune", "fine-tuning")])
def test_a_null_training_batch_says_what_to_set_and_never_falls_back_to_data(section, loop):
    with pytest.raises(ConfigError) as error:
        EvalConfig.from_dict({"data": {"batch_size": 64}, section: {"batch_size": None}})
    assert str(error.value) == (f"{section}.batch_size: must be set to the global batch of {loop}, a positive integer "
                                "(data.batch_size is evaluation's inference batch, not a fallback) (got None)")


def test_a_subset_smaller_than_the_batch_trains_every_epoch(synthetic_stores, encoder_file, eval_config, tmp_path):
    out = tmp_path / "semi"
    assert evaluate("semi", eval_config, synthetic_stores / "ntu60-xsub", encoder_file, out,
                    "--set", "finetune.batch_size=512", "--set", "finetune.lr_batch=48") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    size = metrics["semi"]["subset_size"]
    assert size < 512 and metrics["optimisation"]["global_batch"] == size
    assert metrics["optimisation"]["steps_per_epoch"] == 1
    assert metrics["optimisation"]["lr_absolute"] == pytest.approx(EVAL["finetune"]["lr"] * size / 48)
    epochs = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2] and all(np.isfinite(r["loss"]) for r in epochs)


def test_best_test_epoch_takes_the_earliest_maximum_and_the_final_score():
    records = [{"kind": "epoch", "epoch": 2, "test_top1": 0.5}, {"kind": "step", "epoch": 3, "test_top1": 0.99},
               {"kind": "epoch", "epoch": 3}, {"kind": "epoch", "epoch": 4, "test_top1": 0.7},
               {"kind": "epoch", "epoch": 6, "test_top1": 0.7}]
    assert best_test_epoch(records, last_epoch=8, last_top1=0.6) == (0.7, 4)
    assert best_test_epoch(records, last_epoch=8, last_top1=0.8) == (0.8, 8)
    assert best_test_epoch([], last_epoch=5, last_top1=0.3) == (0.3, 5)


def test_best_epoch_is_recorded_and_survives_a_resume(synthetic_stores, encoder_file, eval_config, tmp_path):
    data, out = synthetic_stores / "ntu60-xsub", tmp_path / "linear"
    assert evaluate("linear", eval_config, data, encoder_file, out, "--set", "monitor.test_every=1") == 0
    first = json.loads((out / "metrics.json").read_text())
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    scored = {r["epoch"]: r["test_top1"] for r in log if r["kind"] == "epoch"}
    assert sorted(scored) == [1, 2, 3] and scored[3] == pytest.approx(first["top1"])
    assert first["best_top1"] == pytest.approx(max(scored.values())) and first["last_epoch"] == 3
    assert scored[first["best_epoch"]] == pytest.approx(first["best_top1"])
    # A resumed run trains nothing more here; its best must come from the epochs scored before it started.
    next(r for r in log if r["kind"] == "epoch" and r["epoch"] == 1)["test_top1"] = 1.0
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    assert evaluate("linear", eval_config, data, encoder_file, out, "--set", "monitor.test_every=1") == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert (resumed["best_top1"], resumed["best_epoch"], resumed["top1"]) == (1.0, 1, first["top1"])


def test_semi_supervised_subsets_cover_every_class_and_repeat():
    labels = np.repeat(np.arange(12), [3, 50, 100, 7, 1, 40, 40, 40, 40, 40, 40, 40])
    for fraction in (0.01, 0.1):
        subset = per_class_subset(labels, fraction, seed=subset_seed(0, fraction, 0))
        counts = np.bincount(labels[subset], minlength=12)
        expected = np.maximum(1, np.round(fraction * np.bincount(labels)))
        assert (counts == expected).all() and len(np.unique(subset)) == len(subset)
    one = per_class_subset(labels, 0.1, subset_seed(0, 0.1, 3))
    assert np.array_equal(one, per_class_subset(labels, 0.1, subset_seed(0, 0.1, 3)))
    assert not np.array_equal(one, per_class_subset(labels, 0.1, subset_seed(0, 0.1, 4)))


def test_bad_encoder_files_are_clear_errors(synthetic_stores, encoder_file, eval_config, tmp_path):
    data = str(synthetic_stores / "ntu60-xsub")
    corrupted = tmp_path / "corrupted.pt"
    corrupted.write_bytes(encoder_file.read_bytes()[:2000])
    mismatched = tmp_path / "mismatched.pt"
    state = torch.load(encoder_file, weights_only=True)
    state["model"]["dim"] = 64
    torch.save(state, mismatched)
    not_encoder = tmp_path / "checkpoint.pt"
    torch.save({"model": {}}, not_encoder)
    cases = [(corrupted, "not a readable checkpoint"), (mismatched, "do not match"),
             (not_encoder, "not an encoder file"), (tmp_path / "absent.pt", "does not exist")]
    for path, words in cases:
        result = subprocess.run([sys.executable, "-m", "hacm.evaluate", "--protocol", "linear", "--config",
                                 str(eval_config), "--data", data, "--encoder", str(path), "--out",
                                 str(tmp_path / "o"), "--no-progress"], capture_output=True, text=True)
        assert result.returncode == 1 and words in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_metrics_schema_rejects_incomplete_documents():
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        validate_metrics({"protocol": "linear", "top1": 1.5})
