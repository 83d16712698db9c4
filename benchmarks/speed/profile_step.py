"""Where hacm's pretraining step spends its time, and how fast it could be if only its GEMMs were left.

    python benchmarks/speed/profile_step.py [--precision fp32|bf16] [--size paper|embedded] [--steps 4]

torch.profiler over `--steps` steps after two warm-up steps (the sizes of benchmarks/speed/bench_release.py,
random input, AdamW). Prints one JSON line: the step's seconds, the seconds of its GEMMs (mm, addmm, bmm,
baddbmm: the linear layers, and the blocked attention's products in bf16 on CPUs without AMX), of its
fused attention and softmax kernels, and the ten costliest operators. GEMMs and attention are the floor
of the step for the arithmetic it does, so `release seconds / (gemm + attention)` bounds the speed-up over
the release that is possible without computing less.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.speed.bench_release import step_function  # noqa: E402
from hacm.compare import COORDS, JOINTS, REPO, hacm_model, model_sizes  # noqa: E402

GEMMS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
ATTENTION = ("scaled_dot_product", "aten::_softmax")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--size", choices=("paper", "embedded"), default="paper")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be positive")
    sizes, batch = model_sizes(args.size)
    torch.manual_seed(0)
    model = hacm_model(REPO, sizes)
    x = torch.randn(batch, COORDS, sizes["frames"], JOINTS, sizes["num_bodies"]) * 0.3
    step = step_function(model, x, release=False, bf16=args.precision == "bf16")
    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(args.steps):
            step()
    events = profiler.key_averages()

    def seconds(match) -> float:
        return round(sum(e.self_cpu_time_total for e in events if match(e.key)) / args.steps / 1e6, 3)

    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
    print(json.dumps({"size": args.size, "precision": args.precision, "batch_size": batch,
                      "threads": torch.get_num_threads(), "step_s": seconds(lambda key: True),
                      "gemm_s": seconds(lambda key: key in GEMMS),
                      "attention_s": seconds(lambda key: any(word in key for word in ATTENTION)),
                      "top": [[e.key, round(e.self_cpu_time_total / args.steps / 1e6, 3)] for e in top]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
