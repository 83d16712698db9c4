"""`python -m hacm.visualize {masks,diagnose}`: what the model masks, as figures and as numbers.

masks: the skeleton over time with each limb token coloured visible / masked, one row per masking
criterion (temporal attention, spatial hierarchy, MAMP motion-aware, random), same sequence, same
weights, same seed; optionally an animated GIF over all time patches.
diagnose: per masking group, the agreement with random masking under the same Gumbel noise, the keep
rate of the top / bottom score deciles and the share of tokens on the ball's clip sphere (docs/method.md §2.10),
for a pretraining checkpoint or a fresh model, on the first body sequences of a store; a readable table
and one JSON line. Exits 2 on any bad input, with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hacm.cli import EXIT_USAGE, OneLineParser, run_command
from hacm.methods import METHODS

PROG = "hacm.visualize"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m hacm.visualize", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    masks = commands.add_parser("masks", help="visible / masked tokens per masking criterion",
                                description="The skeleton with each limb token coloured visible / masked, one row "
                                            "per masking criterion, and the full token grid of each.")
    masks.add_argument("--sample", required=True, metavar="FILE|STORE_DIR:INDEX",
                       help="a raw NTU .skeleton file, or a sample of a converted store")
    masks.add_argument("--out", type=Path, required=True, metavar="PNG", help="the figure")
    masks.add_argument("--gif", type=Path, metavar="GIF", help="also an animation over all time patches")
    masks.add_argument("--checkpoint", type=Path, metavar="FILE",
                       help="pretraining checkpoint.pt whose weights score the tokens (default: random init)")
    masks.add_argument("--config", type=Path, metavar="YAML", help="a YAML file whose `model:` mapping overrides "
                                                                   "ModelConfig fields")
    masks.add_argument("--seed", type=int, default=0, help="initialisation and Gumbel-noise seed (default 0)")
    masks.add_argument("--frames", type=int, metavar="T", help="frames after the centre crop (default: config)")
    masks.add_argument("--t-patch", type=int, metavar="P", help="frames per token (default: config)")
    masks.add_argument("--mask-ratio", type=float, metavar="R", help="share of masked tokens (default: config)")
    masks.add_argument("--body", type=int, choices=(0, 1), default=0, help="which body to draw (default 0)")
    diagnose = commands.add_parser("diagnose", help="does each masking criterion change what stays visible?",
                                   description="Agreement of each masking group with random masking under the same "
                                               "noise, decile keep rates, share of tokens on the clip sphere.")
    diagnose.add_argument("--data", required=True, type=Path, metavar="STORE_DIR",
                          help="a converted split (e.g. resources/data/synthetic/ntu60-xsub/test)")
    diagnose.add_argument("--checkpoint", type=Path, metavar="FILE",
                          help="pretraining checkpoint.pt (default: a fresh model of --method and --set)")
    diagnose.add_argument("--method", choices=tuple(METHODS), default="hacm",
                          help="preset of the fresh model (default hacm; paper size unless --set changes it)")
    diagnose.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="a model field of the fresh model, e.g. --set score_scaling=minmax "
                               "--set score_temperature=0.25 (repeatable)")
    diagnose.add_argument("--sequences", type=int, default=40, help="body sequences (default 40)")
    diagnose.add_argument("--draws", type=int, default=1000, help="Gumbel draws per sequence (default 1000)")
    diagnose.add_argument("--seed", type=int, default=0, help="initialisation and noise seed (default 0)")
    diagnose.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON line to this file")
    return parser


def diagnose(args: argparse.Namespace) -> int:
    """The diagnostic's table and JSON line (and --json FILE)."""
    from hacm.model.mask_diagnostic import format_table
    from hacm.visualize.inputs import VisualizeError
    from hacm.visualize.masks import diagnose_command

    diagnostic, title = diagnose_command(data=args.data, checkpoint=args.checkpoint, method=args.method,
                                         overrides=args.overrides, sequences=args.sequences, draws=args.draws,
                                         seed=args.seed)
    line = json.dumps({"model": title, **diagnostic.as_dict()})
    print(format_table(diagnostic, title=title))
    print(line)
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(line + "\n")
        except OSError as error:
            raise VisualizeError(f"--json {args.json}: {error.strerror or error}") from None
    return 0


def figure(args: argparse.Namespace) -> int:
    """The mask figure (and GIF), and a line per criterion."""
    from hacm.visualize.masks import render_masks
    from hacm.visualize.panels import FIGURE_DRAWS

    masks = render_masks(sample=args.sample, out=args.out, gif=args.gif, checkpoint=args.checkpoint,
                         config_path=args.config, seed=args.seed, frames=args.frames, t_patch=args.t_patch,
                         mask_ratio=args.mask_ratio, body=args.body)
    random = next(mask for mask in masks if mask.criterion == "random")
    for mask in masks:
        line = f"{mask.title}: {mask.visible_count(args.body)} of {mask.config.tokens} tokens visible"
        if mask is not random:
            line += (f", {mask.shared_visible(random, body=args.body)} of them also under random masking (same noise); "
                     f"agreement over {FIGURE_DRAWS} draws {mask.agreement:.3f}")
        print(line)
    print(f"wrote {args.out}" + (f" and {args.gif}" if args.gif else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported here so that `--help` and usage errors do not wait for torch and matplotlib.
    from hacm.visualize.inputs import VisualizeError

    command = diagnose if args.command == "diagnose" else figure
    return run_command(PROG, lambda: command(args), errors=(VisualizeError,), code=EXIT_USAGE)


if __name__ == "__main__":
    sys.exit(main())
