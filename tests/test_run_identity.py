"""What a run reuses (a checkpoint, the linear feature cache) is reused only when it was made from the same
configuration, encoder weights and data; otherwise the run starts over (--restart-on-change, as the
workflow asks) or stops with one line saying what differs. Reliability probe, headline defects 1 and 2."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from hacm.data.storage import SkeletonStore
from hacm.evaluate.__main__ import main as evaluate_main
from hacm.pretrain.__main__ import main as pretrain_main
from hacm.train.checkpoint import module_digest
from tests.conftest import TINY_ARCHITECTURE

EVAL = {"seed": 0, "model": TINY_ARCHITECTURE, "data": {"batch_size": 64}, "linear": {"epochs": 3}}
PRETRAIN = {"model": TINY_ARCHITECTURE, "data": {"batch_size": 32}, "optim": {"epochs": 2, "warmup_epochs": 1},
            "monitor": {"knn_every": 0}}


def write(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def linear(config: Path, data: Path, out: Path, *extra: str) -> dict:
    assert evaluate_main(["--protocol", "linear", "--config", str(config), "--data", str(data), "--encoder", "none",
                          "--out", str(out), "--no-progress", *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_stores_carry_a_content_digest_that_tells_data_apart(synthetic_stores):
    a, b = (SkeletonStore(synthetic_stores / benchmark / "train") for benchmark in ("ntu60-xsub", "ntu60-xview"))
    assert len(a.identity["content_sha256"]) == 64 and a.identity != b.identity
    assert SkeletonStore(synthetic_stores / "ntu60-xsub" / "train").identity == a.identity


def test_module_digest_follows_the_weights():
    torch.manual_seed(0)
    first = torch.nn.Linear(4, 3)
    torch.manual_seed(0)
    same = torch.nn.Linear(4, 3)
    assert module_digest(first) == module_digest(same)
    with torch.no_grad():
        same.bias[0] += 1e-6
    assert module_digest(first) != module_digest(same)


def test_linear_feature_cache_is_not_reused_for_another_random_encoder(synthetic_stores, tmp_path):
    """Defect 1: a rerun into the same folder with another random encoder (another architecture) and
    --restart-on-change reported the old encoder's cached features; it must equal a fresh folder's run."""
    data = synthetic_stores / "ntu60-xsub"
    linear(write(tmp_path / "a.yaml", EVAL), data, tmp_path / "run")
    other = {**EVAL, "model": {**TINY_ARCHITECTURE, "depth": TINY_ARCHITECTURE.get("depth", 1) + 1}}
    config = write(tmp_path / "b.yaml", other)
    rerun = linear(config, data, tmp_path / "run", "--restart-on-change")
    fresh = linear(config, data, tmp_path / "fresh")
    assert rerun["top1"] == fresh["top1"]
    assert torch.equal(torch.load(tmp_path / "run" / "features.pt")["features"],
                       torch.load(tmp_path / "fresh" / "features.pt")["features"])


def test_linear_feature_cache_is_not_reused_on_other_data(synthetic_stores, tmp_path):
    config = write(tmp_path / "a.yaml", EVAL)
    linear(config, synthetic_stores / "ntu60-xsub", tmp_path / "run")
    rerun = linear(config, synthetic_stores / "ntu60-xview", tmp_path / "run", "--restart-on-change")
    fresh = linear(config, synthetic_stores / "ntu60-xview", tmp_path / "fresh")
    assert rerun["top1"] == fresh["top1"] and rerun["num_train"] == fresh["num_train"]


def test_linear_feature_cache_made_by_other_code_is_recomputed(synthetic_stores, tmp_path, monkeypatch):
    """The cache key holds the package's source digest: features cached by other code are not reused."""
    config, data = write(tmp_path / "a.yaml", EVAL), synthetic_stores / "ntu60-xsub"
    linear(config, data, tmp_path / "fresh")
    fresh = torch.load(tmp_path / "fresh" / "features.pt")

    def rerun_over(cache_code: str) -> torch.Tensor:
        run = tmp_path / cache_code
        linear(config, data, run)
        state = torch.load(run / "features.pt")
        state["features"] = torch.zeros_like(state["features"])  # what the other code computed
        state["key"]["code"] = cache_code
        torch.save(state, run / "features.pt")
        (run / "checkpoint.pt").unlink()  # the head trains again, reading the cache
        linear(config, data, run)
        return torch.load(run / "features.pt")["features"]

    monkeypatch.setattr("hacm.evaluate.protocols.source_digest", lambda: "this code")
    assert torch.equal(rerun_over("other code"), fresh["features"])
    assert not rerun_over("this code").any()  # same key: the cache is used, so the check above can fail


def test_evaluation_resumed_on_other_data_is_a_one_line_error(synthetic_stores, tmp_path, capsys):
    config = write(tmp_path / "a.yaml", EVAL)
    linear(config, synthetic_stores / "ntu60-xsub", tmp_path / "run")
    code = evaluate_main(["--protocol", "linear", "--config", str(config), "--data",
                          str(synthetic_stores / "ntu60-xview"), "--encoder", "none", "--out", str(tmp_path / "run"),
                          "--no-progress"])
    error = capsys.readouterr().err
    assert code != 0 and "from other data" in error and "Traceback" not in error


def pretrain(config: Path, data: Path, out: Path, *extra: str) -> int:
    return pretrain_main(["--config", str(config), "--data", str(data), "--out", str(out), "--no-progress", *extra])


def test_pretraining_resumed_on_other_data_stops_or_starts_over(synthetic_stores, tmp_path, capsys):
    """Defect 2: an --out resumed with another --data mixed datasets (exit 0), and a finished run rerun on
    new data re-emitted the old encoder."""
    config = write(tmp_path / "pretrain.yaml", PRETRAIN)
    assert pretrain(config, synthetic_stores / "ntu60-xsub", tmp_path / "run", "--stop-after-epochs", "1") == 0
    assert pretrain(config, synthetic_stores / "ntu60-xview", tmp_path / "run") != 0
    error = capsys.readouterr().err
    assert "from other data" in error and "Traceback" not in error
    # Workflow mode: start over on the new data, giving what a fresh folder gives.
    assert pretrain(config, synthetic_stores / "ntu60-xview", tmp_path / "run", "--restart-on-change") == 0
    assert pretrain(config, synthetic_stores / "ntu60-xview", tmp_path / "fresh") == 0
    restarted, fresh = (encoder_weights(tmp_path / folder) for folder in ("run", "fresh"))
    assert all(torch.equal(restarted[key], fresh[key]) for key in fresh)


def encoder_weights(run: Path) -> dict:
    return torch.load(run / "encoder.pt", weights_only=True)["state_dict"]


def test_a_finished_pretraining_is_not_reemitted_for_new_data(synthetic_stores, tmp_path):
    config = write(tmp_path / "pretrain.yaml", PRETRAIN)
    assert pretrain(config, synthetic_stores / "ntu60-xsub", tmp_path / "run") == 0
    before = encoder_weights(tmp_path / "run")
    assert pretrain(config, synthetic_stores / "ntu60-xview", tmp_path / "run", "--restart-on-change") == 0
    after = encoder_weights(tmp_path / "run")
    assert any(not torch.equal(before[key], after[key]) for key in before)
    assert torch.load(tmp_path / "run" / "encoder.pt", weights_only=True)["data"] == {
        "train": SkeletonStore(synthetic_stores / "ntu60-xview" / "train").identity}


def test_a_restarted_pretraining_leaves_no_encoder_of_the_old_data(synthetic_stores, tmp_path):
    """Probe N1: a finished run started over on other data and stopped early kept the old data's encoder.pt."""
    config = write(tmp_path / "pretrain.yaml", PRETRAIN)
    assert pretrain(config, synthetic_stores / "ntu60-xsub", tmp_path / "run") == 0
    assert pretrain(config, synthetic_stores / "ntu60-xview", tmp_path / "run", "--restart-on-change",
                    "--stop-after-epochs", "1") == 0
    assert not (tmp_path / "run" / "encoder.pt").exists()


def test_a_torn_last_log_line_does_not_block_resuming(tmp_path):
    """A kill in the middle of a write leaves half a JSON line; resuming used to fail on it."""
    from hacm.train.monitor import MetricsLog

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "epoch", "epoch": 1}\n{"kind": "epoch", "epoch": 2}\n{"kind": "step", "epo')
    log = MetricsLog(path, keep_through_epoch=1)
    assert log.records() == [{"kind": "epoch", "epoch": 1}]
    log.write({"kind": "epoch", "epoch": 2, "loss": 0.5})
    assert [record["epoch"] for record in log.records()] == [1, 2]


def test_a_finished_run_whose_outputs_were_deleted_is_redone(synthetic_stores, tmp_path):
    """The workflow deletes a job's outputs before rerunning it (e.g. after the stores were rewritten with
    the same content): resuming the finished checkpoint used to leave metrics.jsonl missing, so every
    rerun failed; the run is trained again, in full."""
    config = write(tmp_path / "pretrain.yaml", PRETRAIN)
    data = synthetic_stores / "ntu60-xsub"
    assert pretrain(config, data, tmp_path / "run", "--restart-on-change") == 0
    for output in ("encoder.pt", "metrics.jsonl", "loss_curve.png"):
        (tmp_path / "run" / output).unlink()
    assert pretrain(config, data, tmp_path / "run", "--restart-on-change") == 0
    assert all((tmp_path / "run" / output).is_file() for output in ("encoder.pt", "metrics.jsonl", "loss_curve.png"))
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "epoch"]
    assert epochs == [1, 2]
