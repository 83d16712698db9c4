"""`python -m hacm.bench pretrain ...`: speed of one pretraining step of the paper-size model, as one JSON line
(hacm.bench.step)."""

from __future__ import annotations

import argparse
import json
import sys

from hacm.cli import interrupts_raise, start_process

if __name__ == "__main__":  # before torch's import: allocator settings, a quiet Ctrl-C while it loads
    start_process("hacm.bench")

import torch  # noqa: E402

from hacm.bench.step import bench_pretrain  # noqa: E402
from hacm.train.distributed import requested_device  # noqa: E402
from hacm.train.engine import AUTOCAST_DTYPES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hacm.bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pretrain = commands.add_parser("pretrain", help="one pretraining step of the paper-size model")
    pretrain.add_argument("--batch-size", type=int, default=16)
    pretrain.add_argument("--steps", type=int, default=5)
    pretrain.add_argument("--warmup", type=int, default=2)
    pretrain.add_argument("--frames", type=int, default=72)
    pretrain.add_argument("--t-patch", type=int, default=3)
    pretrain.add_argument("--precision", choices=sorted(AUTOCAST_DTYPES), default="fp32")
    pretrain.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    pretrain.add_argument("--compile", action="store_true", help="torch.compile the transformer stacks "
                          "(the warm-up steps then include the compilation)")
    args = parser.parse_args(argv)
    interrupts_raise()
    if args.frames % args.t_patch or min(args.batch_size, args.steps, args.frames) < 1 or args.warmup < 0:
        parser.error("--frames must be a positive multiple of --t-patch; batch size and steps positive, warmup >= 0")
    try:
        requested_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps(bench_pretrain(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
