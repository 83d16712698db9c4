"""`python -m hacm.evaluate --protocol {linear,finetune,semi,transfer} --config FILE --data DIR --encoder FILE|none --out DIR`.

DIR is a converted split (train/ and test/). `--encoder none` evaluates a randomly initialised encoder
(the "no pretraining" row; fine-tuning from scratch). `--encoder` also takes the authors' published
pretrained weights (a .pth of the HA-CM release or of MAMP; hacm.release.weights), `--encoder-kind`
naming their model where the file does not tell MAE from MAMP. Writes OUT/metrics.json, predictions.csv,
confusion.png, metrics.jsonl and a resumable OUT/checkpoint.pt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hacm.cli import EXIT_USAGE, run_parser, run_stage, start_process, start_run, usage_error

PROG = "hacm.evaluate"
if __name__ == "__main__":  # before the heavy imports below: allocator settings, a quiet Ctrl-C while they load
    start_process(PROG)

import torch  # noqa: E402  (after the start-up guard above)

from hacm.evaluate.config import load_eval_config  # noqa: E402
from hacm.evaluate.protocols import Run, evaluate  # noqa: E402
from hacm.protocols import PROTOCOLS  # noqa: E402
from hacm.release.kinds import KINDS  # noqa: E402
from hacm.train.checkpoint import RunFolderLock  # noqa: E402
from hacm.train.distributed import requested_device  # noqa: E402
from hacm.train.environment import use_cuda  # noqa: E402
from hacm.train.errors import RUN_ERRORS  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = run_parser(PROG, __doc__.splitlines()[0],
                        config_help="evaluation YAML (a run's: python -m hacm.recipes evaluate BENCH METHOD PROTOCOL > FILE)",
                        set_example="linear.epochs=10")
    parser.add_argument("--protocol", choices=tuple(PROTOCOLS), required=True)
    parser.add_argument("--encoder", required=True, help="encoder.pt written by hacm.pretrain, the authors' published "
                        "weights (.pth), or 'none'")
    parser.add_argument("--encoder-kind", choices=KINDS, help="the authors' model a published .pth holds (read from "
                        "the file where it can be: the release's keys, MAMP's args.model)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when PyTorch sees a device, else the "
                        "CPU; a SLURM job given GPUs that PyTorch cannot use stops with one line)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = start_run(PROG, args, load_eval_config)
    if config is None:
        return EXIT_USAGE
    encoder = None if args.encoder.lower() == "none" else Path(args.encoder)
    if encoder is None and args.encoder_kind is not None:
        return usage_error(PROG, "--encoder-kind names the model of a published weights file; --encoder is none")
    try:
        asked = requested_device(args.device) if args.device else None
    except ValueError as error:
        return usage_error(PROG, error)

    def run_protocol() -> int:
        # DeviceError (a SLURM job's GPUs that PyTorch cannot use) is one of RUN_ERRORS: one line, exit 1
        device = asked if asked is not None else torch.device("cuda" if use_cuda() else "cpu")
        with RunFolderLock(args.out):
            run = Run(protocol=args.protocol, config=config, data_dir=args.data, out_dir=args.out,
                      encoder_path=encoder, encoder_kind=args.encoder_kind, device=device,
                      show_progress=not args.no_progress, restart_on_change=args.restart_on_change,
                      config_file=args.config)
            metrics = evaluate(run)
        print(f"hacm.evaluate: {args.protocol} on {metrics['dataset'].get('benchmark')}: top-1 "
              f"{100 * metrics['top1']:.2f} % at the last epoch, {100 * metrics['best_top1']:.2f} % at the best "
              f"(epoch {metrics['best_epoch']}), top-5 {100 * metrics['top5']:.2f} % ({metrics['mode']}); {args.out}")
        return 0

    return run_stage(PROG, run_protocol, errors=RUN_ERRORS, out=args.out)


if __name__ == "__main__":
    sys.exit(main())
