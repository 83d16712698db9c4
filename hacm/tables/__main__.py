"""`python -m hacm.tables --plan PLAN.json --published config/published.yaml --out DIR`: the paper's tables.

Reads the evaluation results (metrics.json files and the predictions.csv beside each) a plan names,
puts the published numbers beside them and writes DIR/NAME.csv, NAME_differences.csv (paired bootstrap
differences HA-CM − baseline), NAME.md, NAME.tex per table, DIR/pretraining.png and DIR/index.md.
Plan format, CSV layouts and the bootstrap intervals: hacm/tables/report.py; published numbers:
hacm/tables/published.py.
Any bad input ends the run with one `hacm.tables: ...` line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hacm.cli import OneLineParser, one_line

PROG = "hacm.tables"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m hacm.tables", description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, required=True, metavar="JSON",
                        help="plan file written by the workflow (tables, rows, metrics files, curves)")
    parser.add_argument("--published", type=Path, metavar="YAML",
                        help="published numbers (config/published.yaml); without it no published rows are shown "
                             "and a plan table that asks for them is an error")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (created)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hacm.tables import ReportError
    from hacm.tables.report import make_report

    try:
        written = make_report(args.plan, args.published, args.out)
    except (ReportError, OSError) as error:
        raise SystemExit(f"{PROG}: {one_line(error)}") from None
    print(f"{PROG}: wrote {len(written)} files to {args.out}: " + ", ".join(path.name for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
