"""Speed of one pretraining step of the paper-size model (`python -m hacm.bench pretrain ...` prints it as one
JSON line).

The figure of merit is `samples_per_s * 305.6 / 16 / matmul_gflops_fp32`: 305.6 GFLOP is one training
step at batch 16 as counted by torch.utils.flop_counter for the authors' implementation, and the
2048^3 float32 matmul speed measured in the same process normalises away the machine.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from hacm.model.config import ModelConfig
from hacm.model.pretrainer import HACMPretrainer
from hacm.train.engine import AUTOCAST_DTYPES

REFERENCE_STEP_GFLOP = 305.6  # authors' implementation, batch 16, T=72, t_patch=3
REFERENCE_BATCH = 16
# The paper-size model of the release's config/ntu60_xsub_joint/pretrain_hacm.yaml (dim_feat 256, depth 8,
# decoder_depth 3, num_heads 8), two bodies; frames and t_patch come from the command (72 and 3 there).
PAPER_MODEL = dict(dim=256, depth=8, heads=8, decoder_dim=256, decoder_depth=3, decoder_heads=8, num_bodies=2)


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, *, size: int = 2048, repeats: int = 5) -> float:
    """Best of `repeats` timings of a size^3 float32 matmul, in GFLOP/s."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    _synchronise(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        _synchronise(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def bench_pretrain(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = ModelConfig(frames=args.frames, t_patch=args.t_patch, **PAPER_MODEL)
    model = HACMPretrainer(config).to(device)
    if args.compile:
        model.compile_transformers()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randn(args.batch_size, config.coords, config.frames, config.num_joints, config.num_bodies,
                    device=device) * 0.3
    generator = torch.Generator(device=device).manual_seed(0)
    dtype = AUTOCAST_DTYPES[args.precision]
    gflops_before = matmul_gflops(device)

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            output = model(x, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    _synchronise(device)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        _synchronise(device)
        times.append(time.perf_counter() - start)
    gflops = max(gflops_before, matmul_gflops(device))
    step_s = statistics.median(times)
    samples_per_s = args.batch_size / step_s
    return {
        "bench": "pretrain", "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "precision": args.precision, "compile": args.compile,
        "batch_size": args.batch_size,
        "frames": args.frames, "t_patch": args.t_patch, "steps": args.steps,
        "step_ms": round(1000 * step_s, 1), "samples_per_s": round(samples_per_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None,
        "matmul_gflops_fp32": round(gflops, 1),
        "efficiency": round(samples_per_s * REFERENCE_STEP_GFLOP / REFERENCE_BATCH / gflops, 3),
    }
