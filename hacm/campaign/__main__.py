"""`python -m hacm.campaign cost [--gpu NAME] [--throughput FILE | --throughput-from FILE] [--all] [--json]
SNAKEMAKE ARGUMENTS`: what a submission will cost, before it is submitted.

The Snakemake arguments are the ones you will submit with (`--profile slurm all_tables --configfile
config/paper.yaml`); the workflow resolves the jobs itself, in a dry run, so profiles, `--set-resources`
and `--config` count as they will. Exit 0; 1 when the workflow cannot be planned (Snakemake's first
error line); 2 for a usage error (an unknown GPU lists the known ones).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hacm.cli import EXIT_OK, EXIT_RUN_ERROR, EXIT_USAGE, OneLineParser

PROG = "python -m hacm.campaign"


def parser() -> argparse.ArgumentParser:
    main_parser = OneLineParser(prog=PROG, description="What a campaign will run and cost, before it is submitted.")
    commands = main_parser.add_subparsers(dest="command", required=True)
    cost = commands.add_parser(
        "cost", prog=f"{PROG} cost", allow_abbrev=False, description="Jobs, samples, FLOPs and GPU-hours per rule of a planned campaign, "
        "and every job longer than its runtime; the arguments it does not know go to Snakemake.",
        epilog="example: python -m hacm.campaign cost --gpu epyc-2core --profile slurm all_tables "
               "--configfile config/paper.yaml")
    cost.add_argument("--gpu", metavar="NAME", help="a device of the throughput table (default: its `default`)")
    where = cost.add_mutually_exclusive_group()
    where.add_argument("--throughput", type=Path, metavar="FILE",
                       help="throughput table to read instead of hacm/campaign/throughput.yaml")
    where.add_argument("--throughput-from", type=Path, metavar="FILE",
                       help="the JSON summary of `bash benchmarks/gpu_check.sh` (benchmarks/results/<file>.json)")
    cost.add_argument("--all", action="store_true",
                      help="the whole campaign (Snakemake's --forceall), not only what is still to run")
    cost.add_argument("--json", action="store_true", help="print the estimate, every job with it, as JSON")
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args, snakemake_args = parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    from hacm.campaign.cost import campaign_costs, report_document, report_text
    from hacm.campaign.jobs import CampaignError, PlanningError, planned_jobs
    from hacm.campaign.throughput import choose_device

    try:
        device = choose_device(table=args.throughput, name=args.gpu, measured=args.throughput_from)
        plan = planned_jobs(snakemake_args, forceall=args.all)
    except PlanningError as error:
        print(f"{PROG} cost: {error}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except CampaignError as error:
        print(f"{PROG} cost: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    costs = campaign_costs(plan, device)
    text = json.dumps(report_document(plan, costs, device), indent=1) if args.json else report_text(plan, costs, device)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `| head`: the reader has what it wanted; no traceback when Python flushes at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
