"""`python -m hacm.release verify --release PATH [--mamp PATH] [--size small|paper] [--seed N]`.

Builds the authors' models in this process from the checkouts the user names (a git clone of
YinxPeng/HA-CM-main; a checkout of maoyunyao/MAMP), perturbs their biases and LayerNorms, copies their
weights into hacm's models through hacm.release.keymap and prints one row per quantity computed by both:
encoder features against the authors' evaluation models, scores, kept tokens under the same noise, the
losses of a fixed mask and of each side's own forward. Exit 0 when every row is equal within its float32
tolerance or a documented, explained difference of hacm's corrected objective; 1 when a row differs (or
the authors' code fails); 2 for a usage error (not a checkout, a missing file), in one line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hacm.cli import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_ERROR,
    EXIT_USAGE,
    OneLineParser,
    interrupts_raise,
    start_process,
)

PROG = "hacm.release"
if __name__ == "__main__":  # before torch's import: allocator settings, a quiet Ctrl-C while it loads
    start_process(PROG)

from hacm.release.checkout import ReleaseError  # noqa: E402
from hacm.release.noise import NoiseError  # noqa: E402
from hacm.release.pairs import SIZES  # noqa: E402


def _seed(text: str) -> int:
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


_seed.__name__ = "non-negative integer"  # argparse's message: "invalid non-negative integer value: '-3'"


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    verify = commands.add_parser("verify", help="hacm's models against the authors', weight for weight",
                                 description=__doc__.split("\n\n", 1)[1].split("\n\n")[0])
    verify.add_argument("--release", type=Path, required=True, help="a git clone of YinxPeng/HA-CM-main")
    verify.add_argument("--mamp", type=Path, help="a checkout of maoyunyao/MAMP: adds the MAE and MAMP rows")
    verify.add_argument("--size", choices=SIZES, default="small",
                        help="small (default): depth 2, decoder depth 1 (MAE / MAMP also D 64, T 40; the release "
                        "hard-codes D 256 and T 72); paper: the configs of NTU-60 x-sub")
    verify.add_argument("--seed", type=_seed, default=0, help="weights, perturbation, input and masking noise")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    interrupts_raise()
    from hacm.release.verify import check_checkouts, header, verify

    try:
        check_checkouts(args.release, args.mamp)
    except ReleaseError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        rows = verify(args.release, args.mamp, size=args.size, seed=args.seed)
    except (ReleaseError, NoiseError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    from hacm.release.rows import table

    print("\n".join(header(args.size, mamp=args.mamp is not None, seed=args.seed)))
    print()
    print(table(rows))
    failed = [row for row in rows if not row.passed]
    expected = sum(1 for row in rows if row.passed and row.verdict != "equal")
    print()
    if failed:
        names = "; ".join(f"{row.method} {row.quantity}" for row in failed)
        print(f"{PROG}: {len(failed)} of {len(rows)} rows differ: {names}")
        return EXIT_RUN_ERROR
    print(f"{PROG}: all {len(rows)} rows equal ({len(rows) - expected}) or expected differences ({expected})")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
