"""What only a CUDA GPU can show: bf16 autocast steps, the device-resident loader, NCCL. Marked `gpu`:
left out of the default run (which has no GPU) and run by benchmarks/gpu_check.sh (`pytest -m gpu`);
each test skips with the reason where CUDA is absent."""

from __future__ import annotations

import argparse
import os

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


def test_bf16_autocast_steps_of_the_paper_size_model_are_finite():
    from hacm.bench import bench_pretrain

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
