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
from pathlib import Path

from hacm.cli import interrupts_raise, quiet_interrupts_while_starting, run_stage

if __name__ == "__main__":  # before the heavy imports below: a Ctrl-C while they load is one line
    quiet_interrupts_while_starting("hacm.pretrain")

from hacm.config import ConfigError  # noqa: E402  (after the start-up guard above)
from hacm.runtime import ensure_allocator_settings  # noqa: E402
from hacm.train.checkpoint import RunFolderLock  # noqa: E402
from hacm.train.config import load_pretrain_config  # noqa: E402
from hacm.train.distributed import setup_distributed, teardown_distributed  # noqa: E402
from hacm.train.pretraining import RUN_ERRORS, run_pretraining  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hacm.pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="pretraining YAML (see config/examples)")
    parser.add_argument("--data", type=Path, required=True, help="converted split folder with train/ and test/")
    parser.add_argument("--out", type=Path, required=True, help="run folder (resumed when it has a checkpoint)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optim.epochs=10 (repeatable)")
    parser.add_argument("--stop-after-epochs", type=int, help="stop after this many epochs of this run "
                        "(for time-limited jobs; run again to continue)")
    parser.add_argument("--restart-on-change", action="store_true",
                        help="discard a checkpoint written with another configuration instead of failing (the workflow "
                             "reruns a job only when its configuration or inputs changed)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    interrupts_raise()
    if argv is None:  # a command-line run, not a call from Python
        ensure_allocator_settings()
    try:
        config = load_pretrain_config(args.config, args.overrides)
    except ConfigError as error:
        print(f"hacm.pretrain: error: {error}", file=sys.stderr)
        return 2
    context = setup_distributed()

    def train() -> int:
        with RunFolderLock(args.out) if context.is_main else contextlib.nullcontext():
            record = run_pretraining(config, data_dir=args.data, out_dir=args.out, context=context,
                                     stop_after_epochs=args.stop_after_epochs, show_progress=not args.no_progress,
                                     restart_on_change=args.restart_on_change, config_file=args.config)
        if context.is_main and record:
            knn = f", kNN top-1 {100 * record['knn_top1']:.1f} %" if record.get("knn_top1") is not None else ""
            print(f"hacm.pretrain: epoch {record['epoch']}/{config.optim.epochs}: loss {record['loss']:.4f}{knn}; "
                  f"outputs in {args.out}")
        return 0

    try:
        return run_stage("hacm.pretrain", train, errors=RUN_ERRORS, out=args.out)
    finally:
        teardown_distributed()


if __name__ == "__main__":
    sys.exit(main())
