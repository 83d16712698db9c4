"""Write the embedded synthetic raw dataset (NTU RGB+D and PKU-MMD formats): `python -m hacm.synthesize --out DIR`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hacm.data.synthetic import synthetic_raw_is_current, write_synthetic_raw


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hacm.synthesize", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write ntu/, pku1/ and pku2/ into")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _summary(manifest: dict, out: Path, seconds: float) -> str:
    ntu, pku1, pku2 = manifest["ntu"], manifest["pku1"], manifest["pku2"]
    return (
        f"hacm.synthesize: wrote {ntu['files']} NTU files ({ntu['missing_skeletons']} without skeletons), "
        f"{pku1['videos']} + {pku2['videos']} PKU-MMD videos ({pku1['actions']} + {pku2['actions']} actions), "
        f"{manifest['num_classes']} classes, seed {manifest['seed']}, to {out} in {seconds:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be a non-negative integer")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} exists and is not a folder")
    if synthetic_raw_is_current(args.out, seed=args.seed):
        print(f"hacm.synthesize: {args.out} already holds the synthetic data of seed {args.seed}; nothing written")
        return 0
    start = time.perf_counter()
    try:
        manifest = write_synthetic_raw(args.out, seed=args.seed, progress=not args.quiet)
    except OSError as error:
        print(f"hacm.synthesize: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hacm.synthesize: interrupted; the folder is incomplete and will be rewritten next time", file=sys.stderr)
        return 130
    print(_summary(manifest, args.out, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
