"""benchmarks/bench_release.py: the side-by-side speed comparison (its timings are not asserted)."""

from __future__ import annotations

import json

import pytest

from benchmarks.bench_release import REPO, BenchError, main, method_source, model_sizes
from hacm.config import load_yaml
from hacm.runtime import ALLOCATOR_SETTINGS, allocator_in_force

MODULE = '''
import torch


class Model:
    def other(self):
        return 1

    def wanted(self, x):
        """Doc."""
        if x:
            return x + 1
        return 0
'''


def test_method_source_is_the_method_dedented():
    source = method_source(MODULE, "wanted")
    assert source.startswith("def wanted(self, x):\n")
    namespace: dict = {}
    exec(source, namespace)
    assert namespace["wanted"](None, 2) == 3


def test_a_missing_method_is_one_error():
    with pytest.raises(BenchError, match="no method absent"):
        method_source(MODULE, "absent")


def test_against_a_commit_prints_one_json_line(capsys):
    assert main(["--against", "HEAD", "--rounds", "1", "--steps", "1", "--warmup", "0", "--batch-size", "1",
                 "--precision", "fp32"]) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert record["other"] == "hacm@HEAD" and record["fp32"]["ratio"] > 0
    assert record["allocator"] in {"default", "raised", "custom"}
    for side in ("hacm", "other"):
        assert record["fp32"][f"{side}_page_faults_per_step"] >= 0 and record["fp32"][f"{side}_kernel_s_per_step"] >= 0


def test_the_allocator_in_force_is_read_from_the_environment(monkeypatch):
    for key in ALLOCATOR_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    assert allocator_in_force() == "default"
    for key, value in ALLOCATOR_SETTINGS.items():
        monkeypatch.setenv(key, value)
    assert allocator_in_force() == "raised"
    monkeypatch.setenv(next(iter(ALLOCATOR_SETTINGS)), "65536")
    assert allocator_in_force() == "custom"


def test_a_raised_allocator_that_cannot_take_effect_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("HACM_NO_REEXEC", "1")  # no re-execution: the settings never reach this process
    for key in ALLOCATOR_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    assert main(["--against", "HEAD", "--allocator", "raised", "--rounds", "1", "--steps", "1"]) == 2
    assert "did not take effect" in capsys.readouterr().err


def test_the_release_at_the_embedded_size_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--release", str(tmp_path), "--size", "embedded"])
    assert stop.value.code == 2 and "hard-codes D = 256" in capsys.readouterr().err


def test_a_folder_that_is_not_a_checkout_is_one_line(tmp_path, capsys):
    assert main(["--release", str(tmp_path), "--rounds", "1", "--steps", "1"]) == 2
    assert "not a git checkout" in capsys.readouterr().err


def test_the_embedded_size_is_the_default_configs_model_and_batch():
    sizes, batch = model_sizes("embedded")
    pretrain = load_yaml(REPO / "config" / "config.yaml")["pretrain"]
    assert {key: sizes[key] for key in pretrain["model"]} == pretrain["model"] and batch == pretrain["data"]["batch_size"]
    assert sizes["dim"] < model_sizes("paper")[0]["dim"] and batch >= 1


def test_against_a_commit_at_the_embedded_size(capsys):
    assert main(["--against", "HEAD", "--size", "embedded", "--rounds", "1", "--steps", "1", "--warmup", "0",
                 "--precision", "fp32"]) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert record["size"] == "embedded" and record["batch_size"] == model_sizes("embedded")[1]


def test_the_step_profile_is_one_json_line_whose_parts_fit_in_the_step(capsys):
    from benchmarks.profile_step import main as profile_main

    assert profile_main(["--size", "embedded", "--steps", "1"]) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert 0 < record["gemm_s"] and record["gemm_s"] + record["attention_s"] <= record["step_s"]
    assert len(record["top"]) == 10
