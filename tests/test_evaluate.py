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

from hacm.eval.schema import validate_metrics
from hacm.eval.subsets import per_class_subset, subset_seed
from hacm.evaluate import main as evaluate_main
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


def test_random_encoder_and_rerun(synthetic_stores, eval_config, tmp_path):
    data = synthetic_stores / "ntu60-xsub"
    assert evaluate("linear", eval_config, data, "none", tmp_path / "random") == 0
    first = json.loads((tmp_path / "random" / "metrics.json").read_text())
    assert first["encoder"]["sha256"] is None and "random init" in first["encoder"]["method"]
    assert evaluate("linear", eval_config, data, "none", tmp_path / "random") == 0  # resumes: nothing left to train
    assert json.loads((tmp_path / "random" / "metrics.json").read_text())["top1"] == first["top1"]


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
