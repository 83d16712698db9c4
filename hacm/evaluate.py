"""`python -m hacm.evaluate --protocol {linear,finetune,semi,transfer} --config FILE --data DIR --encoder FILE|none --out DIR`.

DIR is a converted split (train/ and test/). `--encoder none` evaluates a randomly initialised encoder
(the "no pretraining" row; fine-tuning from scratch). Writes OUT/metrics.json, predictions.csv,
confusion.png, metrics.jsonl and a resumable OUT/checkpoint.pt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hacm.cli import interrupts_raise, quiet_interrupts_while_starting, run_stage

if __name__ == "__main__":  # before the heavy imports below: a Ctrl-C while they load is one line
    quiet_interrupts_while_starting("hacm.evaluate")

import torch  # noqa: E402  (after the start-up guard above)

from hacm.config import ConfigError  # noqa: E402
from hacm.eval.config import PROTOCOLS, load_eval_config  # noqa: E402
from hacm.eval.protocols import Run, evaluate  # noqa: E402
from hacm.runtime import ensure_allocator_settings  # noqa: E402
from hacm.train.checkpoint import RunFolderLock  # noqa: E402
from hacm.train.distributed import requested_device  # noqa: E402
from hacm.train.pretraining import RUN_ERRORS  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hacm.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=PROTOCOLS, required=True)
    parser.add_argument("--config", type=Path, required=True, help="evaluation YAML (see config/examples)")
    parser.add_argument("--data", type=Path, required=True, help="converted split folder with train/ and test/")
    parser.add_argument("--encoder", required=True, help="encoder.pt written by hacm.pretrain, or 'none'")
    parser.add_argument("--out", type=Path, required=True, help="run folder (resumed when it has a checkpoint)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set linear.epochs=10 (repeatable)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--restart-on-change", action="store_true",
                        help="discard a checkpoint written with another configuration instead of failing (the workflow "
                             "reruns a job only when its configuration or inputs changed)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    interrupts_raise()
    if argv is None:
        ensure_allocator_settings()
    try:
        config = load_eval_config(args.config, args.overrides)
    except ConfigError as error:
        print(f"hacm.evaluate: error: {error}", file=sys.stderr)
        return 2
    encoder = None if args.encoder.lower() == "none" else Path(args.encoder)
    try:
        device = requested_device(args.device)
    except ValueError as error:
        print(f"hacm.evaluate: error: {error}", file=sys.stderr)
        return 2

    def run_protocol() -> int:
        with RunFolderLock(args.out):
            run = Run(protocol=args.protocol, config=config, data_dir=args.data, out_dir=args.out,
                      encoder_path=encoder, device=device, show_progress=not args.no_progress,
                      restart_on_change=args.restart_on_change, config_file=args.config)
            metrics = evaluate(run)
        print(f"hacm.evaluate: {args.protocol} on {metrics['dataset'].get('benchmark')}: top-1 "
              f"{100 * metrics['top1']:.2f} % at the last epoch, {100 * metrics['best_top1']:.2f} % at the best "
              f"(epoch {metrics['best_epoch']}), top-5 {100 * metrics['top5']:.2f} % ({metrics['mode']}); {args.out}")
        return 0

    return run_stage("hacm.evaluate", run_protocol, errors=RUN_ERRORS, out=args.out)


if __name__ == "__main__":
    sys.exit(main())
