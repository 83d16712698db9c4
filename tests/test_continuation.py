"""A pretraining stopped at a step boundary (a signal, a time limit) and continued, as often as it takes:
the checkpoint between two steps, the exit code that asks for a continuation, the history that survives
every continuation and rebuilds metrics.jsonl, and where the run says it ran."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from hacm.train.stopping import EXIT_CONTINUE, StopRequest, requeue_this_job, slurm_job_end
from tests.conftest import recipe_file
from tests.test_pretrain import TINY, run, weights


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "monitor": {"knn_every": 0, "log_every": 1}}))
    return path


def records(folder: Path, name: str = "metrics.jsonl") -> list[dict]:
    return [json.loads(line) for line in (folder / name).read_text().splitlines()]


def pretrain_process(config: Path, data: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hacm.pretrain", "--config", str(config), "--data", str(data),
                             "--out", str(out), "--no-progress", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def wait_for_steps(history: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if history.exists() and sum('"kind": "step"' in line for line in history.read_text().splitlines()) >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{history} did not reach {count} steps")


def test_a_signal_stops_at_the_next_step_and_the_continuations_end_where_a_straight_run_ends(
        synthetic_stores, config, tmp_path):
    """SIGTERM (SLURM at the time limit) and SIGUSR1 (its --signal warning), each mid-epoch: the run saves
    between two steps, exits 75, and the runs that continue it end with the straight run's weights, epoch
    means and a log holding every epoch once; Snakemake deleting metrics.jsonl in between loses nothing."""
    data = synthetic_stores / "ntu60-xsub"
    assert run(config, data, tmp_path / "straight") == 0
    out = tmp_path / "continued"
    for number, steps in ((signal.SIGTERM, 3), (signal.SIGUSR1, 19)):
        process = pretrain_process(config, data, out)
        wait_for_steps(out / "history.jsonl", steps, process)
        process.send_signal(number)
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == EXIT_CONTINUE, stderr
        assert f"({signal.Signals(number).name} received); checkpoint saved" in stderr and "Traceback" not in stderr
        assert "stopping in epoch" in stdout
        state = torch.load(out / "checkpoint.pt", weights_only=True)
        assert state["epoch_progress"] is not None and 0 < state["epoch_progress"]["steps_done"] < 11
        (out / "metrics.jsonl").unlink()  # what Snakemake does to a failed job's outputs
    assert run(config, data, out) == 0
    straight, continued = weights(tmp_path / "straight"), weights(out)
    for key in straight:
        assert torch.equal(continued[key], straight[key]), key
    log, reference = records(out), records(tmp_path / "straight")
    epochs = [r for r in log if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert [r["loss"] for r in epochs] == [r["loss"] for r in reference if r["kind"] == "epoch"]
    steps = [r["step"] for r in log if r["kind"] == "step"]
    assert steps == sorted(set(steps)) == list(range(33))  # every step once, none lost, none twice
    assert [r["reason"] for r in log if r["kind"] == "stopped"] == ["SIGTERM received", "SIGUSR1 received"]
    assert sum(r["kind"] == "environment" for r in log) == 3  # where each of the three parts ran
    assert (out / "metrics.jsonl").read_text() == (out / "history.jsonl").read_text()


def test_the_time_limit_stops_the_run_before_slurm_kills_it():
    """Without a signal: the job's end (from SLURM) nearer than the margin, which grows with the slowest
    stretch between two step boundaries and the last checkpoint's writing time."""
    request = StopRequest(deadline=time.time() + 60, margin_s=10)
    assert request.reason() is None
    request.stretch(30)  # an epoch end with its monitor took 30 s
    request.last_save = 5
    assert request.margin() == 10 + 60 + 5 and "time limit is near" in request.reason()
    with StopRequest() as asked:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert asked.reason() == "SIGUSR1 received"
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


def test_the_job_end_comes_from_slurm(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert slurm_job_end() is None
    assert "not a SLURM job" in requeue_this_job()
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_JOB_END_TIME", "1900000000")
    assert slurm_job_end() == 1900000000.0


def test_a_finished_run_rebuilds_its_outputs_without_training(synthetic_stores, config, tmp_path):
    """Snakemake deletes a failed job's outputs (metrics.jsonl, the curve): a rerun of a finished run rebuilds
    them from the history instead of training again (it used to train from scratch)."""
    data, out = synthetic_stores / "ntu60-xsub", tmp_path / "run"
    assert run(config, data, out) == 0
    before = (out / "metrics.jsonl").read_text()
    trained = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    for name in ("metrics.jsonl", "loss_curve.png", "encoder.pt"):
        (out / name).unlink()
    assert run(config, data, out) == 0
    assert (out / "metrics.jsonl").read_text() == before and (out / "loss_curve.png").is_file()
    assert torch.equal(torch.load(out / "checkpoint.pt", weights_only=True)["model"]["mask_token"], trained["mask_token"])
    assert (out / "encoder.pt").is_file()


def test_where_a_run_ran_is_recorded_and_its_log_has_a_line_per_epoch(synthetic_stores, config, tmp_path):
    data, out = synthetic_stores / "ntu60-xsub", tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "hacm.pretrain", "--config", str(config), "--data", str(data),
                             "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if " done: loss " in line]
    assert len(lines) == 3 and "epoch 3/3 done" in lines[-1] and "samples/s, ETA" in lines[0] and "cpu (" in lines[0]
    environment = next(r for r in records(out) if r["kind"] == "environment")
    assert environment["device"] == "cpu" and environment["torch"] == torch.__version__ and environment["host"]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["environment"]["device"] == "cpu"


def test_a_gpu_job_without_a_usable_gpu_stops_at_once(synthetic_stores, config, tmp_path):
    """Users' review: a job given a GPU whose PyTorch sees none trained on the CPU until its time limit."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a usable GPU")
    data = synthetic_stores / "ntu60-xsub"
    linear = recipe_file(tmp_path, "evaluate", "ntu60-xsub", "hacm", "linear")
    for stage, stage_config, extra in (("pretrain", config, []),
                                       ("evaluate", linear, ["--protocol", "linear", "--encoder", "none"])):
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", f"hacm.{stage}", "--config", str(stage_config), "--data", str(data),
                                 "--out", str(tmp_path / stage), "--no-progress", *extra],
                                capture_output=True, text=True, timeout=120, env={**os.environ, "SLURM_JOB_GPUS": "0"})
        assert result.returncode == 1 and "given GPUs (SLURM_JOB_GPUS=0)" in result.stderr, result.stderr
        assert "HACM_DEVICE=cpu" in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / stage / "checkpoint.pt").exists() and time.monotonic() - started < 60


def test_stores_can_be_staged_to_node_local_scratch(synthetic_stores, config, tmp_path, capsys):
    data, scratch = synthetic_stores / "ntu60-xsub", tmp_path / "scratch"
    assert run(config, data, tmp_path / "shared", "--stop-after-epochs", "1") == 0
    assert run(config, data, tmp_path / "staged", "--stop-after-epochs", "1", "--stage-data", str(scratch)) == 0
    assert "staged" in capsys.readouterr().err and list(scratch.iterdir()) == []  # removed after the run
    shared, staged = weights(tmp_path / "shared"), weights(tmp_path / "staged")
    assert all(torch.equal(shared[key], staged[key]) for key in shared)
    # the staged run resumes from the shared stores: the checkpoint matches the data by content, not path
    assert run(config, data, tmp_path / "staged") == 0
