"""hacm's pretraining step against the authors' release, or against an earlier hacm commit, side by side.

    python benchmarks/speed/bench_release.py --release PATH/TO/HA-CM-main [--rounds 6 --steps 3]
    python benchmarks/speed/bench_release.py --against HEAD~1 [--size embedded]

PATH is a git checkout of https://github.com/YinxPeng/HA-CM-main (the user clones it; hacm ships none
of its code). Its HEAD `model_hacm/transformer.py` calls a method, `mask_hyper_matrix`, that exists
there only as compiled bytecode (and imports `.drop`, which model_hacm/ has only as bytecode too: the
script takes the release's model/drop.py); the script takes the method's source from the checkout's own
history (`model_mamp/transformer.py` at commit 5755d8a, `--mask-commit`), adds it to the class at run
time and changes nothing else. `--against REV` builds hacm's model from a `git worktree` of this
repository at REV instead: every speed change is measured against the code it replaces. The release's
model is built by hacm.release.checkout (as `python -m hacm.release verify` builds it).

Both models are the paper size of the release's config/ntu60_xsub_joint/pretrain_hacm.yaml (D 256, depth
8, decoder depth 3, 8 heads, T 72, t_patch 3, 18 limb joints + the trunk as parents), on the same input
batch, each with torch.optim.AdamW over all its trainable parameters (betas 0.9, 0.95 as the release's
main_pretrain.py), in one process with the same threads. Rounds alternate A B A B ..., `--steps`
timed steps each after a warm-up, so that drifts of the machine hit both alike; per implementation the
median step over all rounds is reported, for float32 and for bfloat16 autocast. Prints one JSON line.
`--size embedded` times the embedded default's small model and batch (config/config.yaml) instead, the
step that the README's first command repeats ~3,000 times (against an earlier commit only: the release
hard-codes D = 256). Each side's page faults and kernel seconds per step are reported too: a step that
frees and reallocates blocks over glibc's mmap threshold pays the kernel for those pages every step, and
`--allocator raised` runs the whole comparison with hacm's allocator settings (hacm.runtime) instead.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from hacm.compare import COORDS, JOINTS, REPO, checkout_at, hacm_model, model_sizes
from hacm.provenance import cpu_model
from hacm.release.checkout import MASK_COMMIT, RELEASE_FORWARD, ReleaseError, check_release_checkout, release_model
from hacm.runtime import allocator_in_force, ensure_allocator_settings

# betas and weight decay as the release's main_pretrain.py; the lr does not change the time of a step
ADAMW = dict(lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
BenchError = ReleaseError  # a one-line reason the comparison cannot run (hacm.release.checkout's errors too)


def step_function(model: torch.nn.Module, x: torch.Tensor, *, release: bool, bf16: bool) -> Callable[[], None]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], **ADAMW)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(x, **RELEASE_FORWARD) if release else model(x, generator=generator).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


@dataclass
class StepTiming:
    seconds: float  # median wall seconds per step
    page_faults: int  # mean minor page faults per step (pages the kernel had to map in)
    kernel_seconds: float  # mean CPU seconds per step spent in the kernel, all threads


def alternate(steps: dict[str, Callable[[], None]], *, rounds: int, per_round: int, warmup: int) -> dict[str, StepTiming]:
    """Each function's step timing, in alternating rounds."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    faults = {name: 0 for name in steps}
    kernel = {name: 0.0 for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(per_round):
                before = resource.getrusage(resource.RUSAGE_SELF)
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_SELF)
                faults[name] += after.ru_minflt - before.ru_minflt
                kernel[name] += after.ru_stime - before.ru_stime
    return {name: StepTiming(seconds=statistics.median(values), page_faults=round(faults[name] / len(values)),
                             kernel_seconds=round(kernel[name] / len(values), 3)) for name, values in times.items()}


def other_model(args: argparse.Namespace, workdir: Path, sizes: dict) -> tuple[torch.nn.Module, str, bool]:
    """The model to compare with, its name, and whether it is the release's (another calling convention)."""
    if args.release is not None:
        check_release_checkout(args.release)
        return release_model(args.release, args.mask_commit, workdir), "release", True
    with checkout_at(args.against, workdir) as tree:
        return hacm_model(tree, sizes), f"hacm@{args.against}", False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    other = parser.add_mutually_exclusive_group(required=True)
    other.add_argument("--release", type=Path, help="a git checkout of YinxPeng/HA-CM-main")
    other.add_argument("--against", metavar="REV", help="an earlier revision of this repository")
    parser.add_argument("--mask-commit", default=MASK_COMMIT, help="the release commit with mask_hyper_matrix's source")
    parser.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    parser.add_argument("--size", choices=("paper", "embedded"), default="paper",
                        help="the release's paper-size model, or the embedded default's (config/config.yaml)")
    parser.add_argument("--compile", action="store_true", help="torch.compile hacm's transformer stacks "
                        "(optim.compile); the other side stays eager, so --against HEAD --compile measures the switch")
    parser.add_argument("--allocator", choices=("default", "raised"), default="default",
                        help="raised: re-run this command with glibc's mmap and trim thresholds raised, as every hacm "
                        "stage runs (hacm.runtime); they are process-wide, so both sides get them. default: glibc's "
                        "own, as a user runs the release; freed blocks over 32 MB go back to the kernel and are "
                        "faulted in again on the next step")
    parser.add_argument("--batch-size", type=int, help="default: 16 at paper size, the config's at embedded size")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    if min(args.batch_size or 1, args.rounds, args.steps) < 1 or args.warmup < 0:
        parser.error("--batch-size, --rounds and --steps must be positive, --warmup >= 0")
    if args.release is not None and args.size != "paper":
        parser.error("the release runs at paper size only: its temporal criterion hard-codes D = 256 "
                     "(model_hacm/transformer.py, self.l1 = nn.Linear(256, 256)); --size embedded works with --against")
    if args.allocator == "raised":
        ensure_allocator_settings()  # re-executes this command; returns where the settings are already in force
        if allocator_in_force() != "raised":
            print("bench_release: --allocator raised did not take effect (HACM_NO_REEXEC is set, other MALLOC_ "
                  "values are in the environment, or this is not Linux)", file=sys.stderr)
            return 2
    try:
        sizes, batch_size = model_sizes(args.size)
        batch_size = args.batch_size or batch_size
        with tempfile.TemporaryDirectory() as workdir:
            torch.manual_seed(0)
            ours = hacm_model(REPO, sizes)
            if args.compile:
                ours.compile_transformers()
            theirs, their_name, release = other_model(args, Path(workdir), sizes)
            x = torch.randn(batch_size, COORDS, sizes["frames"], JOINTS, sizes["num_bodies"]) * 0.3
            record = {"bench": "side_by_side", "size": args.size, "cpu": cpu_model(), "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "compile": args.compile, "batch_size": batch_size, "rounds": args.rounds,
                      "steps_per_round": args.steps, "other": their_name,
                      "allocator": allocator_in_force()}
            for precision in args.precision:
                bf16 = precision == "bf16"
                timings = alternate({"hacm": step_function(ours, x, release=False, bf16=bf16),
                                     their_name: step_function(theirs, x, release=release, bf16=bf16)},
                                    rounds=args.rounds, per_round=args.steps, warmup=args.warmup)
                ours_timing, their_timing = timings["hacm"], timings[their_name]
                record[precision] = {"hacm_samples_per_s": round(batch_size / ours_timing.seconds, 2),
                                     "other_samples_per_s": round(batch_size / their_timing.seconds, 2),
                                     "ratio": round(their_timing.seconds / ours_timing.seconds, 3),
                                     "hacm_page_faults_per_step": ours_timing.page_faults,
                                     "other_page_faults_per_step": their_timing.page_faults,
                                     "hacm_kernel_s_per_step": ours_timing.kernel_seconds,
                                     "other_kernel_s_per_step": their_timing.kernel_seconds}
    except BenchError as error:
        print(f"bench_release: {error}", file=sys.stderr)
        return 2
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
