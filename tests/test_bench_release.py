"""benchmarks/speed/bench_release.py: the side-by-side speed comparison (its timings are not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hacm.compare import REPO, model_sizes
from hacm.release.checkout import ReleaseError as BenchError
from hacm.release.checkout import method_source

SCRIPT = REPO / "benchmarks" / "speed" / "bench_release.py"


def run_script(script, *arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *arguments], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


def main(arguments: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return run_script(SCRIPT, *arguments, env=env)
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


def test_against_a_commit_prints_one_json_line():
    result = main(["--against", "HEAD", "--rounds", "1", "--steps", "1", "--warmup", "0", "--batch-size", "1",
                   "--precision", "fp32"])
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip())
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


def test_a_raised_allocator_that_cannot_take_effect_is_one_line(monkeypatch):
    for key in ALLOCATOR_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    # no re-execution: the settings never reach the process
    result = main(["--against", "HEAD", "--allocator", "raised", "--rounds", "1", "--steps", "1"],
                  env={"HACM_NO_REEXEC": "1"})
    assert result.returncode == 2 and "did not take effect" in result.stderr


def test_the_release_at_the_embedded_size_is_a_usage_error(tmp_path):
    result = main(["--release", str(tmp_path), "--size", "embedded"])
    assert result.returncode == 2 and "hard-codes D = 256" in result.stderr


def test_a_folder_that_is_not_a_checkout_is_one_line(tmp_path):
    result = main(["--release", str(tmp_path), "--rounds", "1", "--steps", "1"])
    assert result.returncode == 2 and "not a git checkout" in result.stderr


def test_the_embedded_size_is_the_default_configs_model_and_batch():
    sizes, batch = model_sizes("embedded")
    pretrain = load_yaml(REPO / "config" / "config.yaml")["pretrain"]
    assert {key: sizes[key] for key in pretrain["model"]} == pretrain["model"] and batch == pretrain["data"]["batch_size"]
    assert sizes["dim"] < model_sizes("paper")[0]["dim"] and batch >= 1


def test_against_a_commit_at_the_embedded_size():
    result = main(["--against", "HEAD", "--size", "embedded", "--rounds", "1", "--steps", "1", "--warmup", "0",
                   "--precision", "fp32"])
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip())
    assert record["size"] == "embedded" and record["batch_size"] == model_sizes("embedded")[1]


def test_the_step_profile_is_one_json_line_whose_parts_fit_in_the_step():
    result = run_script(REPO / "benchmarks" / "speed" / "profile_step.py", "--size", "embedded", "--steps", "1")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 < record["gemm_s"] and record["gemm_s"] + record["attention_s"] <= record["step_s"]
    assert len(record["top"]) == 10
