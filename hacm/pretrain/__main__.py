"""`python -m hacm.pretrain --config FILE --data DIR --out DIR [--set key=value ...]`: pretrain an encoder.

DIR holds a converted split (`train/`, and `test/` for the kNN monitor). Writes OUT/checkpoint.pt
every epoch, OUT/history.jsonl and OUT/metrics.jsonl (its copy), OUT/loss_curve.png, OUT/run.yaml (the
resolved configuration) and, at the end, OUT/encoder.pt. Prints a line per epoch (and every few minutes).
Run again on the same OUT to resume. Under `torchrun --nproc_per_node=K` it trains data-parallel.
On SIGTERM or SIGUSR1, or when its SLURM job's time limit comes near, it saves a checkpoint at the next
step and exits 75 (with --requeue, after requeuing its SLURM job): run again to continue.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from hacm.cli import EXIT_USAGE, run_parser, run_stage, start_process, start_run

PROG = "hacm.pretrain"
if __name__ == "__main__":  # before the heavy imports below: allocator settings, a quiet Ctrl-C while they load
    start_process(PROG)

from hacm.data.staging import staged  # noqa: E402  (after the start-up guard above)
from hacm.train.checkpoint import RunFolderLock  # noqa: E402
from hacm.pretrain.config import load_pretrain_config  # noqa: E402
from hacm.train.distributed import setup_distributed, teardown_distributed  # noqa: E402
from hacm.train.errors import RUN_ERRORS  # noqa: E402
from hacm.pretrain.run import run_pretraining  # noqa: E402
from hacm.train.stopping import EXIT_CONTINUE, StopRequest, requeue_this_job  # noqa: E402


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = run_parser(PROG, __doc__.splitlines()[0],
                        config_help="pretraining YAML (a run's: python -m hacm.recipes pretrain BENCH METHOD > FILE)",
                        set_example="optim.epochs=10")
    parser.add_argument("--stop-after-epochs", type=positive_int, help="stop after this many epochs of this run "
                        "(for time-limited jobs; run again to continue)")
    parser.add_argument("--stop-after-steps", type=positive_int, help="stop after this many optimisation steps of "
                        "this run (rehearsals, speed checks); a part of an epoch is logged, not saved")
    parser.add_argument("--requeue", action="store_true", help="in a SLURM batch job: after saving at a time limit "
                        "or on a signal, requeue the job so that it continues (the workflow passes it)")
    parser.add_argument("--stage-data", type=Path, metavar="SCRATCH", help="copy the stores under SCRATCH (node-local "
                        "disk, e.g. $TMPDIR) for the run and read them there")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = start_run(PROG, args, load_pretrain_config)
    if config is None:
        return EXIT_USAGE

    def train() -> int:
        context = setup_distributed()
        lock = RunFolderLock(args.out) if context.is_main else contextlib.nullcontext()
        with lock, staged(args.data, args.stage_data, prog=PROG) as data, StopRequest.for_this_job() as stop:
            record = run_pretraining(config, data_dir=data, out_dir=args.out, context=context,
                                     stop_after_epochs=args.stop_after_epochs, stop_after_steps=args.stop_after_steps,
                                     show_progress=not args.no_progress, restart_on_change=args.restart_on_change,
                                     config_file=args.config, stop=stop)
        if record.get("kind") == "stopped":
            if context.is_main:
                then = requeue_this_job() if args.requeue else "run the same command again to continue"
                print(f"{PROG}: stopped in epoch {record['epoch']}/{config.optim.epochs} after step "
                      f"{record['step'] + 1} ({record['reason']}); checkpoint saved in {args.out}; {then}",
                      file=sys.stderr)
            return EXIT_CONTINUE
        if context.is_main and record:
            knn = f", kNN top-1 {100 * record['knn_top1']:.1f} %" if record.get("knn_top1") is not None else ""
            print(f"{PROG}: epoch {record['epoch']}/{config.optim.epochs}: loss {record['loss']:.4f}{knn}; "
                  f"outputs in {args.out}")
        return 0

    try:
        return run_stage(PROG, train, errors=RUN_ERRORS, out=args.out)
    finally:
        teardown_distributed()

if __name__ == "__main__":
    sys.exit(main())
