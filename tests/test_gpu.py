"""What only a CUDA GPU can show: bf16 autocast steps, the device-resident loader, NCCL. Marked `gpu`:
left out of the default run (which has no GPU) and run by benchmarks/speed/gpu_check.sh (`pytest -m gpu`);
each test skips with the reason where CUDA is absent."""

from __future__ import annotations

import argparse
import os

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


def test_bf16_autocast_steps_of_the_paper_size_model_are_finite():
    from hacm.bench.step import bench_pretrain

    record = bench_pretrain(argparse.Namespace(device="cuda", frames=72, t_patch=3, batch_size=8, precision="bf16",
                                               warmup=1, steps=2))
    assert record["samples_per_s"] > 0 and record["peak_gpu_mb"] > 0


def test_device_batches_on_cuda_give_the_cpu_loader_shapes_and_labels(synthetic_stores):
    from hacm.data.loader import DeviceBatches, epoch_batches
    from hacm.data.storage import SkeletonStore

    store = SkeletonStore(synthetic_stores / "ntu60-xsub" / "train")
    on_gpu = DeviceBatches(store, device="cuda", frames=48, train=True)
    on_cpu = DeviceBatches(store, device="cpu", frames=48, train=True)
    indices = epoch_batches(len(store), batch_size=16, seed=0, epoch=1)[0]
    gpu_batch, cpu_batch = on_gpu.batch(indices), on_cpu.batch(indices)
    assert gpu_batch.x.is_cuda and gpu_batch.x.shape == cpu_batch.x.shape
    assert torch.equal(gpu_batch.labels.cpu(), cpu_batch.labels) and torch.isfinite(gpu_batch.x).all()


def test_nccl_all_reduce_with_one_process(monkeypatch):
    import torch.distributed as dist

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(29500 + os.getpid() % 1000))
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        value = torch.ones(4, device="cuda")
        dist.all_reduce(value)
        assert value.tolist() == [1.0] * 4
    finally:
        dist.destroy_process_group()


SMALL = {"frames": 24, "t_patch": 3, "dim": 64, "depth": 2, "heads": 4, "decoder_dim": 64, "decoder_depth": 1,
         "decoder_heads": 4}


def test_a_pretraining_step_does_not_wait_for_the_gpu_between_logged_steps():
    """Issue 25, point 8: with CUDA's sync debug mode set to error, steps that are not logged run through
    (the CPU test in test_training_step.py counts read-backs; this catches what only CUDA syncs on)."""
    import numpy as np

    from hacm.data.loader import Batch
    from hacm.model.config import ModelConfig
    from hacm.model.pretrainer import HACMPretrainer
    from hacm.train.engine import EpochProgress, train_one_epoch
    from hacm.pretrain.run import parameter_groups

    device = torch.device("cuda")
    model = HACMPretrainer(ModelConfig.from_dict(SMALL)).to(device)
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.05), lr=0.0, fused=True)
    batches = [Batch(torch.randn(8, 3, 24, 25, 2, device=device), torch.zeros(8, dtype=torch.long, device=device),
                     torch.arange(8, device=device)) for _ in range(6)]
    generator = torch.Generator(device=device).manual_seed(0)
    progress = EpochProgress(1)
    run = dict(optimizer=optimizer, lr_schedule=np.full(100, 1e-4), device=device, precision="bf16", scaler=None,
               clip_grad=1.0, generator=generator, sequence_slice=lambda n: (0, n), on_step=lambda r: None,
               steps=6, show_progress=False)
    train_one_epoch(model, batches[:1], progress=progress, first_step=1, log_every=1000, **run)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_one_epoch(model, batches[1:], progress=progress, first_step=1, log_every=1000, **run)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert progress.steps_done == 6 and torch.isfinite(progress.sums).all()


def test_pretraining_on_cuda_uses_fused_adamw_and_one_copy_of_the_training_split(synthetic_stores):
    from hacm.data.loader import make_feeder, store_bytes
    from hacm.pretrain.config import PretrainConfig
    from hacm.train.distributed import Distributed
    from hacm.pretrain.run import PretrainingRun

    config = PretrainConfig.from_dict({"model": SMALL, "data": {"batch_size": 16}})
    run = PretrainingRun(config, data_dir=synthetic_stores / "ntu60-xsub", out_dir=synthetic_stores.parent / "gpu_run",
                         context=Distributed(device=torch.device("cuda", 0)))
    assert run.optimizer.defaults["fused"] is True
    feed = dict(frames=24, seed=0, device=torch.device("cuda", 0), loader="auto", workers=0, rotation=0.3)
    before = torch.cuda.memory_allocated()
    training = make_feeder(run.train_store, train=True, **feed)
    copied = torch.cuda.memory_allocated() - before
    assert training.on_device and copied >= store_bytes(run.train_store) * 0.9
    monitor = training.unaugmented()
    assert monitor.device_batches.table is training.device_batches.table
    assert torch.cuda.memory_allocated() - before == copied  # the monitor's view copied nothing


def test_auto_keeps_the_store_mapped_when_the_gpu_lacks_room(synthetic_stores, monkeypatch, capsys):
    import hacm.data.loader as loader
    from hacm.data.storage import SkeletonStore

    monkeypatch.setattr(loader, "fits_on_device", lambda needed, *, free, total: False)
    feeder = loader.make_feeder(SkeletonStore(synthetic_stores / "ntu60-xsub" / "train"), frames=24, train=True,
                                seed=0, device=torch.device("cuda", 0), loader="auto", workers=0, rotation=0.3)
    assert not feeder.on_device and "stays mapped" in capsys.readouterr().err
