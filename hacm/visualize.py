"""`python -m hacm.visualize masks --sample FILE --out PNG`: figures of a sequence and of what the model masks.

masks: the skeleton over time with each limb token coloured visible / masked, one row per masking
criterion (temporal attention, spatial hierarchy, MAMP motion-aware, random), same sequence, same
weights, same seed; optionally an animated GIF over all time patches. Exits 2 on any bad input, with
one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "hacm.visualize"


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one `hacm.visualize: error: ...` line and exit 2, like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {message} (see --help)\n")


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported here so that `--help` and usage errors do not wait for torch and matplotlib.
    from hacm.viz.masks import VisualizeError, render_masks

    try:
        masks = render_masks(sample=args.sample, out=args.out, gif=args.gif, checkpoint=args.checkpoint,
                             config_path=args.config, seed=args.seed, frames=args.frames, t_patch=args.t_patch,
                             mask_ratio=args.mask_ratio, body=args.body)
    except VisualizeError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    random = next(mask for mask in masks if mask.criterion == "random")
    for mask in masks:
        line = f"{mask.title}: {mask.visible_count(args.body)} of {mask.config.tokens} tokens visible"
        if mask is not random:
            line += f", {mask.shared_visible(random, body=args.body)} of them also under random masking (same noise)"
        print(line)
    print(f"wrote {args.out}" + (f" and {args.gif}" if args.gif else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
