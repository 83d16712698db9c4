"""`python -m hacm.pretrain`: outputs, resume equivalence, clear errors, data parallel (gloo) = one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from hacm.pretrain.__main__ import main as pretrain_main
from hacm.train.encoder_file import read_encoder_file

TINY = {
    "seed": 3,
    "model": {"frames": 24, "t_patch": 3, "dim": 32, "depth": 1, "heads": 4, "decoder_dim": 32,
              "decoder_depth": 1, "decoder_heads": 4},
    "data": {"batch_size": 32},
    "optim": {"epochs": 3, "warmup_epochs": 1, "lr": 2e-3},
    "monitor": {"knn_every": 0, "log_every": 2},
}


@pytest.fixture()
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def run(config: Path, data: Path, out: Path, *extra: str) -> int:
    return pretrain_main(["--config", str(config), "--data", str(data), "--out", str(out), "--no-progress", *extra])


def weights(out: Path) -> dict:
    return torch.load(out / "checkpoint.pt", weights_only=True)["model"]


def test_outputs_and_checkpoint_contents(synthetic_stores, tiny_config, tmp_path):
    data = synthetic_stores / "ntu60-xsub"
    out = tmp_path / "run"
    assert run(tiny_config, data, out, "--set", "monitor.knn_every=3") == 0
    for name in ("checkpoint.pt", "encoder.pt", "metrics.jsonl", "loss_curve.png", "run.yaml"):
        assert (out / name).is_file(), name
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 3 and set(state) >= {"model", "optimizer", "rng", "config", "git_commit", "scaler", "step"}
    assert state["config"]["model"]["dim"] == 32 and state["config"]["method"] == "hacm"
    # One config file per run folder: run.yaml, the resolved configuration the checkpoint was made with.
    assert yaml.safe_load((out / "run.yaml").read_text()) == state["config"] and not (out / "config.yaml").exists()
    assert "w_q" in state["model"] and "w_k" in state["model"]
    encoder = read_encoder_file(out / "encoder.pt")
    assert encoder["model"]["dim"] == 32 and encoder["epoch"] == 3
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3] and 0 <= epochs[-1]["knn_top1"] <= 1
    # The masking monitor: each group's agreement with random masking, logged with the kNN accuracy.
    assert set(epochs[-1]["masking_agreement"]) == {"temporal", "spatial"}
    assert all(0 < value <= 1 for value in epochs[-1]["masking_agreement"].values())
    assert any(r["kind"] == "step" for r in records)


def test_resumed_run_matches_a_straight_run(synthetic_stores, tiny_config, tmp_path):
    """The resumed run restores every random state and the optimiser exactly, and every kernel of a step
    computes the same bits whatever the process did before (geoopt's TorchScript expmap0, differentiated
    one way on a process's first call and another way after, is restated eagerly: hyperbolic.expmap0), so
    it ends with the straight run's weights, optimiser state and random streams, bit for bit."""
    data = synthetic_stores / "ntu60-xsub"
    every_step = ("--set", "monitor.log_every=1")
    assert run(tiny_config, data, tmp_path / "straight", *every_step) == 0
    assert run(tiny_config, data, tmp_path / "killed", "--stop-after-epochs", "2", *every_step) == 0
    assert torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert not (tmp_path / "killed" / "encoder.pt").exists()
    assert run(tiny_config, data, tmp_path / "killed", *every_step) == 0
    straight = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    resumed = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert resumed["epoch"] == straight["epoch"] == 3 and resumed["step"] == straight["step"]
    assert torch.equal(resumed["rng"]["torch"], straight["rng"]["torch"])
    for name, state in straight["rng"]["generators"].items():
        assert torch.equal(resumed["rng"]["generators"][name], state), name
    steps = [group["state"] for group in (straight["optimizer"], resumed["optimizer"])]
    assert [s["step"] for s in steps[0].values()] == [s["step"] for s in steps[1].values()]
    records = {name: [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
               for name in ("straight", "killed")}
    epochs = {name: [r for r in rs if r["kind"] == "epoch"] for name, rs in records.items()}
    assert [r["epoch"] for r in epochs["killed"]] == [1, 2, 3]  # no duplicate after resuming
    first_resumed = {name: next(r for r in rs if r["kind"] == "step" and r["epoch"] == 3)
                     for name, rs in records.items()}
    assert first_resumed["killed"]["step"] == first_resumed["straight"]["step"]
    assert first_resumed["killed"]["loss"] == first_resumed["straight"]["loss"]
    for key in straight["model"]:
        assert torch.equal(resumed["model"][key], straight["model"][key]), key
    for index, state in straight["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(resumed["optimizer"]["state"][index][name], value), (index, name)


def test_stop_after_steps_logs_a_part_of_an_epoch_and_a_rerun_trains_it_again(synthetic_stores, tiny_config,
                                                                              tmp_path, capsys):
    """A rehearsal's short run: the steps of an unfinished epoch are logged (with their speed), the
    checkpoint stays at the last whole epoch, and a rerun trains that epoch from its start."""
    data = synthetic_stores / "ntu60-xsub"
    out = tmp_path / "run"
    assert run(tiny_config, data, out, "--stop-after-epochs", "1") == 0
    per_epoch = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert run(tiny_config, data, out, "--stop-after-steps", "2") == 0
    assert "stopped after 2 steps, in epoch 2 (not saved: the checkpoint is of epoch 1" in capsys.readouterr().err
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1 and not (out / "encoder.pt").exists()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    partial = [r for r in records if r["kind"] == "partial_epoch"]
    assert len(partial) == 1 and partial[0]["epoch"] == 2 and partial[0]["steps"] == 2 and partial[0]["samples_per_s"] > 0
    assert partial[0]["step"] == per_epoch + 1
    assert run(tiny_config, data, out) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2, 3]
    assert not any(r["kind"] == "partial_epoch" for r in records)  # dropped with the epoch it belonged to
    assert (out / "encoder.pt").is_file()


def test_changed_config_does_not_resume_silently(synthetic_stores, tiny_config, tmp_path, capsys):
    data = synthetic_stores / "ntu60-xsub"
    assert run(tiny_config, data, tmp_path / "r", "--stop-after-epochs", "1") == 0
    assert run(tiny_config, data, tmp_path / "r", "--set", "optim.lr=0.1") == 1
    assert "another configuration" in capsys.readouterr().err
    # The workflow's mode: start over (the first epoch again), and the old checkpoint is replaced.
    assert run(tiny_config, data, tmp_path / "r", "--set", "optim.lr=0.1", "--restart-on-change",
               "--stop-after-epochs", "1") == 0
    assert "starting over" in capsys.readouterr().err
    state = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and state["config"]["optim"]["lr"] == 0.1


def test_user_mistakes_are_one_line_errors(synthetic_stores, tiny_config, tmp_path):
    cases = [
        (["--set", "model.depht=2"], "unknown key 'depht'"),
        (["--set", "optim.precision=fp8"], "optim.precision"),
        (["--set", "data.batch_size=100000"], "larger than"),
    ]
    for extra, words in cases:
        result = subprocess.run([sys.executable, "-m", "hacm.pretrain", "--config", str(tiny_config), "--data",
                                 str(synthetic_stores / "ntu60-xsub"), "--out", str(tmp_path / "x"), *extra],
                                capture_output=True, text=True)
        assert result.returncode in (1, 2) and words in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run([sys.executable, "-m", "hacm.pretrain", "--config", str(tiny_config), "--data",
                             str(tmp_path / "nothing"), "--out", str(tmp_path / "y")], capture_output=True, text=True)
    assert result.returncode == 1 and "not a converted split" in result.stderr and "Traceback" not in result.stderr


def test_slurm_variables_alone_do_not_start_distributed_mode(monkeypatch):
    from hacm.train.distributed import setup_distributed

    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert not setup_distributed(prefer_cuda=False).enabled


def test_two_gloo_processes_equal_one_process_on_the_same_global_batch(synthetic_stores, tiny_config, tmp_path):
    data = synthetic_stores / "ntu60-xsub"
    assert run(tiny_config, data, tmp_path / "single", "--set", "optim.epochs=2") == 0
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "RANK")}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "hacm.pretrain",
         "--config", str(tiny_config), "--data", str(data), "--out", str(tmp_path / "ddp"), "--no-progress",
         "--set", "optim.epochs=2"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    single, parallel = weights(tmp_path / "single"), weights(tmp_path / "ddp")
    for key in single:
        torch.testing.assert_close(parallel[key], single[key], atol=2e-5, rtol=1e-4, msg=key)
