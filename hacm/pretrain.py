"""`python -m hacm.pretrain --config FILE --data DIR --out DIR [--set key=value ...]`: pretrain an encoder.

DIR holds a converted split (`train/`, and `test/` for the kNN monitor). Writes OUT/checkpoint.pt
every epoch, OUT/metrics.jsonl, OUT/loss_curve.png, OUT/run.yaml (the resolved configuration) and, at the
end, OUT/encoder.pt.
Run again on the same OUT to resume. Under `torchrun --nproc_per_node=K` it trains data-parallel.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from hacm.cli import EXIT_USAGE, run_parser, run_stage, start_process, start_run

PROG = "hacm.pretrain"
if __name__ == "__main__":  # before the heavy imports below: allocator settings, a quiet Ctrl-C while they load
    start_process(PROG)

from hacm.train.checkpoint import RunFolderLock  # noqa: E402  (after the start-up guard above)
from hacm.train.config import load_pretrain_config  # noqa: E402
from hacm.train.distributed import setup_distributed, teardown_distributed  # noqa: E402
from hacm.train.pretraining import RUN_ERRORS, run_pretraining  # noqa: E402


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = run_parser(PROG, __doc__.splitlines()[0], config_help="pretraining YAML (see config/examples)",
                        set_example="optim.epochs=10")
    parser.add_argument("--stop-after-epochs", type=positive_int, help="stop after this many epochs of this run "
                        "(for time-limited jobs; run again to continue)")
    parser.add_argument("--stop-after-steps", type=positive_int, help="stop after this many optimisation steps of "
                        "this run (rehearsals, speed checks); a part of an epoch is logged, not saved")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = start_run(PROG, args, load_pretrain_config)
    if config is None:
        return EXIT_USAGE
    context = setup_distributed()

    def train() -> int:
        with RunFolderLock(args.out) if context.is_main else contextlib.nullcontext():
            record = run_pretraining(config, data_dir=args.data, out_dir=args.out, context=context,
                                     stop_after_epochs=args.stop_after_epochs,
                                     stop_after_steps=args.stop_after_steps, show_progress=not args.no_progress,
                                     restart_on_change=args.restart_on_change, config_file=args.config)
        if context.is_main and record:
            knn = f", kNN top-1 {100 * record['knn_top1']:.1f} %" if record.get("knn_top1") is not None else ""
            print(f"hacm.pretrain: epoch {record['epoch']}/{config.optim.epochs}: loss {record['loss']:.4f}{knn}; "
                  f"outputs in {args.out}")
        return 0

    try:
        return run_stage(PROG, train, errors=RUN_ERRORS, out=args.out)
    finally:
        teardown_distributed()


if __name__ == "__main__":
    sys.exit(main())
