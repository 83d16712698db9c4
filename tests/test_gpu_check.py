"""benchmarks/speed/gpu_check.py, the one-go GPU check: its CPU-safe parts run here, small, so that the day a
GPU is lent the script is known to work."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_the_gpu_check_runs_its_steps_on_a_cpu_and_prints_one_summary(tmp_path):
    result = subprocess.run([sys.executable, "benchmarks/speed/gpu_check.py", "--device", "cpu", "--quick", "--out",
                             str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["cpu"] and summary["date"]
    tests = summary["tests"]  # every CUDA test is collected and, without CUDA, skipped with its reason
    cuda_tests = (REPO / "tests" / "test_gpu.py").read_text().count("\ndef test_")
    assert tests["status"] == "ok" and tests["passed"] + tests["skipped"] == cuda_tests and tests["failed"] == 0
    runs = summary["pretrain"]["runs"]
    assert [(run["precision"], run["status"]) for run in runs] == [("fp32", "ok"), ("bf16", "ok")]
    assert all(run["samples_per_s"] > 0 and run["device"] == "cpu" for run in runs)
    assert all(run["release_ntu60_pretrain_hours"] == round(500 * 40_091 / run["samples_per_s"] / 3600, 2)
               for run in runs)
    assert summary["loader"]["status"] == "ok" and summary["loader"]["samples_per_s"] > 0
    loader = summary["loader"]  # one epoch of whole batches
    assert loader["samples"] == loader["store_samples"] // loader["batch_size"] * loader["batch_size"] > 0
