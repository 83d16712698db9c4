"""The run entry points answer a user's mistake or a Ctrl-C with one line, never a traceback (reliability
probe: `--set optim.lr=[`, `--out` that is a file, `--device cuda` without CUDA, Ctrl-C mid-run)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, default_sigint, recipe_file


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, Path]:
    """The embedded recipe's NTU-60 x-sub pretraining and linear probe, as `python -m hacm.recipes` writes them."""
    folder = tmp_path_factory.mktemp("configs")
    return {"pretrain": recipe_file(folder, "pretrain", "ntu60-xsub", "hacm"),
            "linear": recipe_file(folder, "evaluate", "ntu60-xsub", "hacm", "linear")}


def stage(name: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"hacm.{name}", *arguments, "--no-progress"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", ["bad --set", "out is a file", "cuda without cuda", "not a device", "meta device",
                                  "betas", "empty section", "corrupt info.json", "finetune batch of 1"])
def test_mistakes_are_one_line_errors(case, configs, synthetic_stores, tmp_path):
    data = synthetic_stores / "ntu60-xsub"
    if case == "corrupt info.json":  # probe case 25
        shutil.copytree(data, tmp_path / "store")
        data = tmp_path / "store"
        (data / "train" / "info.json").write_text("{not json")
    (tmp_path / "a_file").write_text("")
    pretrain = ["--config", str(configs["pretrain"]), "--data", str(data)]
    linear = ["--protocol", "linear", "--config", str(configs["linear"]), "--data", str(data), "--encoder", "none"]
    out = ["--out", str(tmp_path / "o")]
    name, arguments, words = {
        "bad --set": ("pretrain", [*pretrain, *out, "--set", "optim.lr=["], "not a YAML value"),
        "out is a file": ("evaluate", [*linear, "--out", str(tmp_path / "a_file")], "is a file"),
        "cuda without cuda": ("evaluate", [*linear, *out, "--device", "cuda"], "CUDA"),
        "not a device": ("evaluate", [*linear, *out, "--device", "gpu"], "not a device"),
        "meta device": ("evaluate", [*linear, *out, "--device", "meta"], "only cpu and cuda"),
        "betas": ("pretrain", [*pretrain, *out, "--set", "optim.betas=0.9"], "optim.betas: must be two numbers"),
        "empty section": ("pretrain", [*pretrain, *out, "--set", "optim=null"], "optim: is empty"),
        "corrupt info.json": ("pretrain", [*pretrain, *out], "is not readable JSON"),
        "finetune batch of 1": ("evaluate", ["--protocol", "finetune", *linear[2:], *out, "--set", "finetune.batch_size=1"],
                                "BatchNorm in the head needs at least 2 per batch"),
    }[case]
    if case == "cuda without cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    result = stage(name, *arguments)
    assert result.returncode != 0 and words in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_ctrl_c_in_pretraining_is_one_line_and_resumable(configs, synthetic_stores, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "hacm.pretrain", "--config", str(configs["pretrain"]), "--data",
                                str(synthetic_stores / "ntu60-xsub"), "--out", str(out), "--no-progress"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr and "resume" in stderr
    assert "Traceback" not in stderr


def test_two_runs_cannot_write_one_folder(configs, synthetic_stores, tmp_path):
    """Reliability probe: nothing stopped two runs writing one output folder."""
    from hacm.train.checkpoint import CheckpointError, RunFolderLock

    out = tmp_path / "run"
    with RunFolderLock(out):
        with pytest.raises(CheckpointError, match="in use by another run"):
            RunFolderLock(out).__enter__()
        result = stage("evaluate", "--protocol", "linear", "--config", str(configs["linear"]), "--data",
                       str(synthetic_stores / "ntu60-xsub"), "--encoder", "none", "--out", str(out))
        assert result.returncode == 1 and "in use by another run (pid" in result.stderr
        assert "Traceback" not in result.stderr
    with RunFolderLock(out):  # released with its holder
        pass


def test_ctrl_c_while_a_stage_starts_is_one_line(configs, synthetic_stores, tmp_path):
    """Probe case 44: a Ctrl-C while torch was still importing printed a KeyboardInterrupt traceback."""
    process = subprocess.Popen([sys.executable, "-m", "hacm.pretrain", "--config", str(configs["pretrain"]), "--data",
                                str(synthetic_stores / "ntu60-xsub"), "--out", str(tmp_path / "run"), "--no-progress"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=default_sigint)
    time.sleep(0.5)  # importing torch takes longer; a machine that is done by then gets the run's own handler
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert len(stderr.strip().splitlines()) == 1


def test_a_checkpoint_missing_a_part_is_one_line(tmp_path):
    """Probe case 40: a checkpoint without `model` (or with other weights) was a KeyError traceback."""
    import torch

    from hacm.train.checkpoint import CheckpointError, restore_run_state

    model = torch.nn.Linear(2, 2)
    objects = dict(modules={"model": model}, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), scaler=None,
                   generators={})
    for state, words in (({"epoch": 1}, "no 'model' entry"),
                         ({"epoch": 1, "model": {"weight": torch.zeros(3, 3)}}, "does not fit this run")):
        with pytest.raises(CheckpointError, match=words):
            restore_run_state(state, **objects, source=tmp_path / "checkpoint.pt")


def test_unusable_checkpoints_say_what_they_are_and_what_to_do(tmp_path, capsys):
    """Probe cases 37-39: a cut checkpoint's message was cut mid-sentence and never said to delete it, a
    text file gave 'KeyError: 101', a pickled payload quoted torch's advice to allow it."""
    import os as _os

    import torch

    from hacm.train.checkpoint import CheckpointError, load_resumable

    class Payload:
        def __reduce__(self):
            return (_os.system, ("true",))

    whole = tmp_path / "whole.pt"
    torch.save({"config": {}}, whole)
    (tmp_path / "cut.pt").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    torch.save({"x": Payload()}, tmp_path / "code.pt")
    for name, words in (("cut", "failed reading zip archive"), ("text", "not a PyTorch checkpoint file"),
                        ("code", "holds pickled code")):
        with pytest.raises(CheckpointError) as error:
            load_resumable(tmp_path / f"{name}.pt", {}, restart_on_change=False)
        assert words in str(error.value) and str(error.value).endswith("delete it to start over"), error.value
        assert "weights_only=False" not in str(error.value) and "\n" not in str(error.value)
        # Workflow mode: the unusable file is left to be overwritten by the new run.
        assert load_resumable(tmp_path / f"{name}.pt", {}, restart_on_change=True) is None
    assert "starting over" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device every write to fails with ENOSPC)")
def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_keeps_the_last(tmp_path, monkeypatch):
    """Reliability probe 2 (N25): a full disk during a checkpoint write was 35 lines of torch's "unexpected pos"
    with no "no space"; the checkpoint itself survived. The writes go to /dev/full here, through torch.save."""
    import builtins

    import torch

    from hacm.train import checkpoint
    from hacm.train.checkpoint import CheckpointError, atomic_save, load_state

    path = tmp_path / "checkpoint.pt"
    atomic_save({"epoch": 1, "w": torch.ones(3)}, path)

    def full(file, mode="r", *args, **kwargs):
        return builtins.open("/dev/full" if "w" in mode else file, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "open", full, raising=False)
    with pytest.raises(CheckpointError) as error:
        atomic_save({"epoch": 2, "w": torch.zeros(100_000)}, path)
    message = str(error.value)
    assert "No space left on device" in message and "MiB free" in message and str(path) in message, message
    assert "previous one is kept" in message and "\n" not in message
    assert load_state(path)["epoch"] == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_an_os_error_of_a_stage_is_one_line_naming_the_file(tmp_path, capsys):
    import errno

    from hacm.cli import EXIT_RUN_ERROR, run_stage

    def body():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "history.jsonl"))

    assert run_stage("hacm.pretrain", body, errors=(ValueError,), out=tmp_path) == EXIT_RUN_ERROR
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "history.jsonl: No space left on device" in lines[0] and "resume" in lines[0]
