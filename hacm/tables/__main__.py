"""`python -m hacm.tables {plan,render}`: the paper's tables from the evaluation results.

plan: check a plan's structure (hacm.tables.plan) and write its file (the workflow's tables_plan rule; the
files it names are checked by `render` once they exist).
render: read the evaluation results (metrics.json files and the predictions.csv beside each) a plan names,
put the published numbers beside them and write DIR/NAME.csv, NAME_differences.csv (paired bootstrap
differences HA-CM − baseline), NAME.md, NAME.tex per table, DIR/pretraining.png and DIR/index.md.
Plan format: hacm/tables/plan.py; CSV layouts and the bootstrap intervals: hacm/tables/report.py;
published numbers: hacm/tables/published.py.
Any bad input ends the run with one `hacm.tables: ...` line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hacm.cli import EXIT_USAGE, OneLineParser, json_object_argument, one_line

PROG = "hacm.tables"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m hacm.tables", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plan = commands.add_parser("plan", help="check a plan's structure and write its file")
    plan.add_argument("--json", required=True, help="the plan as a JSON object")
    plan.add_argument("--out", type=Path, required=True, metavar="FILE", help="plan file to write")
    render = commands.add_parser("render", help="the tables, figure and index of a plan's results")
    render.add_argument("--plan", type=Path, required=True, metavar="JSON",
                        help="plan file written by the workflow (tables, rows, metrics files, curves)")
    render.add_argument("--published", type=Path, metavar="YAML",
                        help="published numbers (config/published.yaml); without it no published rows are shown "
                             "and a plan table that asks for them is an error")
    render.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (created)")
    return parser


def write_plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from hacm.files import write_text_atomically
    from hacm.tables.plan import PLAN_SCHEMA
    from hacm.tables.schemas import first_error

    document = json_object_argument(parser, args.json)
    problem = first_error(document, PLAN_SCHEMA, f"the plan for {args.out}")
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    write_text_atomically(args.out, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return 0


def render(args: argparse.Namespace) -> int:
    from hacm.tables import ReportError
    from hacm.tables.report import make_report

    try:
        written = make_report(args.plan, args.published, args.out)
    except (ReportError, OSError) as error:
        raise SystemExit(f"{PROG}: {one_line(error)}") from None
    print(f"{PROG}: wrote {len(written)} files to {args.out}: " + ", ".join(path.name for path in written))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return write_plan(args, parser) if args.command == "plan" else render(args)


if __name__ == "__main__":
    sys.exit(main())
