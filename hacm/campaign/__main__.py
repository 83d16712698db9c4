"""`python -m hacm.campaign cost|preflight [--gpu NAME] [--throughput FILE | --throughput-from FILE] [--all]
[--json] SNAKEMAKE ARGUMENTS`: what a submission will cost, and whether the cluster can run it, before it
is submitted.

The Snakemake arguments are the ones you will submit with (`--profile slurm all_tables --configfile
config/paper.yaml`); the workflow resolves the jobs itself, in a dry run, so profiles, `--set-resources`
and `--config` count as they will.
cost: exit 0; 1 when the workflow cannot be planned (Snakemake's first error line); 2 for a usage error
(an unknown GPU lists the known ones).
preflight: the cost, after every submission checked against the cluster (`scontrol`, `sacctmgr`); exit 0
when every one fits, 1 when one does not (with the profile entries and the command-line lists that fit),
2 for a usage error or a workflow that cannot be planned, 3 when SLURM cannot be asked (one line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hacm.cli import EXIT_OK, EXIT_RUN_ERROR, EXIT_USAGE, OneLineParser

PROG = "python -m hacm.campaign"
EXIT_REFUSED, EXIT_NO_SLURM = 1, 3


def _estimate_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--gpu", metavar="NAME", help="a device of the throughput table (default: its `default`)")
    where = command.add_mutually_exclusive_group()
    where.add_argument("--throughput", type=Path, metavar="FILE",
                       help="throughput table to read instead of hacm/campaign/throughput.yaml")
    where.add_argument("--throughput-from", type=Path, metavar="FILE",
                       help="the JSON summary of `bash benchmarks/speed/gpu_check.sh` (benchmarks/results/<file>.json)")
    command.add_argument("--all", action="store_true",
                         help="the whole campaign (Snakemake's --forceall), not only what is still to run")
    command.add_argument("--json", action="store_true", help="print the report, every job with it, as JSON")


def parser() -> argparse.ArgumentParser:
    main_parser = OneLineParser(prog=PROG, description="What a campaign will run and cost, before it is submitted.")
    commands = main_parser.add_subparsers(dest="command", required=True)
    cost = commands.add_parser(
        "cost", prog=f"{PROG} cost", allow_abbrev=False, description="Jobs, samples, FLOPs and GPU-hours per rule of a planned campaign, "
        "and every job longer than its runtime; the arguments it does not know go to Snakemake.",
        epilog="example: python -m hacm.campaign cost --gpu epyc-2core --profile slurm all_tables "
               "--configfile config/paper.yaml")
    _estimate_options(cost)
    preflight = commands.add_parser(
        "preflight", prog=f"{PROG} preflight", allow_abbrev=False,
        description="Every submission of a planned campaign checked against the SLURM cluster (partitions, "
        "accounts, CPUs, memory, GPUs, features, time limits), with the settings that fit where one does not, "
        "then the cost; the arguments it does not know go to Snakemake. Exit 0: it fits; 1: it does not; "
        "2: usage or planning error; 3: SLURM cannot be asked.",
        epilog="example: python -m hacm.campaign preflight --profile slurm all_tables --configfile config/paper.yaml")
    _estimate_options(preflight)
    return main_parser


def _print(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `| head`: the reader has what it wanted; no traceback when Python flushes at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def cost(args, snakemake_args: list[str]) -> int:
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
    if args.json:
        _print(json.dumps(report_document(plan, costs, device), indent=1))
    else:
        _print(report_text(plan, costs, device))
    return EXIT_OK


def preflight(args, snakemake_args: list[str]) -> int:
    from hacm.campaign import cost as campaign_cost
    from hacm.campaign.cluster import SlurmUnreachable, read_cluster
    from hacm.campaign.jobs import CampaignError, PlanningError, parsed_arguments, planned_jobs
    from hacm.campaign.preflight import check_plan, cluster_warnings
    from hacm.campaign.preflight_report import Outcome, report_document, report_text
    from hacm.campaign.profile_fix import fix_arguments, option_lists, plan_fix, profile_entries, shell_words
    from hacm.campaign.throughput import choose_device

    try:
        device = choose_device(table=args.throughput, name=args.gpu, measured=args.throughput_from)
        cluster = read_cluster()
        plan = planned_jobs(snakemake_args, forceall=args.all)
        checks = check_plan(plan, cluster)
        warnings = cluster_warnings(checks, cluster)
        if plan.executor != "slurm":  # e.g. no --profile: the check says what sbatch would make of these jobs
            warnings.insert(0, f"the executor is {plan.executor}, not slurm: these arguments submit nothing; "
                               "checked as if they did")
        outcome = Outcome(plan, cluster, checks, warnings, {}, [], [])
        if outcome.refused:
            snakemake_parser, parsed = parsed_arguments(snakemake_args)
            lists = option_lists(snakemake_args, snakemake_parser)
            fix = plan_fix(checks, lists, dict(parsed.groups or {}))
            outcome.profile, outcome.manual = profile_entries(fix), fix.manual
            outcome.arguments = fix_arguments(fix, lists)
            if fix:  # the fix planned again: what Snakemake makes of the settings, not what they should do
                outcome.fixed = check_plan(planned_jobs(snakemake_args + outcome.arguments, forceall=args.all), cluster)
    except SlurmUnreachable as error:
        print(f"{PROG} preflight: {error}", file=sys.stderr)
        return EXIT_NO_SLURM
    except CampaignError as error:  # a PlanningError too: the arguments or the config are what is wrong
        print(f"{PROG} preflight: {'' if isinstance(error, PlanningError) else 'error: '}{error}", file=sys.stderr)
        return EXIT_USAGE
    costs = campaign_cost.campaign_costs(plan, device)
    if args.json:
        _print(json.dumps(report_document(outcome, campaign_cost.report_document(plan, costs, device)), indent=1))
    else:
        command = shell_words(outcome.arguments)
        _print(report_text(outcome, campaign_cost.report_text(plan, costs, device), command))
    return EXIT_OK if not outcome.refused else EXIT_REFUSED


def main(argv: list[str] | None = None) -> int:
    args, snakemake_args = parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    return (cost if args.command == "cost" else preflight)(args, snakemake_args)


if __name__ == "__main__":
    sys.exit(main())
