"""The preflight inside a SLURM run: the Snakefile's `onstart` handler checks the jobs about to be
submitted against the cluster and stops the run before the first sbatch when one cannot run there.

Snakemake calls `onstart` once the DAG is built and before the scheduler submits anything (not in a
dry run, not with --no-hooks); an exception raised there ends the run with exit 1 and the workflow
unlocked. The jobs come from the DAG itself (resources as submitted, groups as formed, local jobs as
Snakemake decides), so the check costs the few SLURM queries and no second plan. A SLURM that cannot be
asked, or a Snakemake whose DAG reads differently, is said in one line and the run goes on: sbatch then
says what it says.
"""

from __future__ import annotations

import shlex
import sys


def check_before_submitting(workflow) -> None:
    """Raise WorkflowError with the refused submissions when a SLURM run's jobs do not fit the cluster."""
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":  # local runs, and each job's own snakemake inside SLURM
        return
    from snakemake.exceptions import WorkflowError
    from snakemake.logging import logger

    from hacm.campaign.cluster import SlurmUnreachable, read_cluster
    from hacm.campaign.jobs import dag_plan
    from hacm.campaign.preflight import check_plan
    from hacm.campaign.preflight_report import refusal_lines

    try:
        cluster = read_cluster()
    except SlurmUnreachable as error:
        logger.warning(f"hacm preflight: not checked: {error}")
        return
    try:
        plan = dag_plan(workflow)
    except Exception as error:  # another Snakemake's internals: never stop a run over the check itself
        logger.warning(f"hacm preflight: not checked: this Snakemake's DAG reads differently ({type(error).__name__}: "
                       f"{error})")
        return
    checks = check_plan(plan, cluster)
    refused = [check for check in checks if check.refused]
    if not refused:
        logger.info(f"hacm preflight: the cluster can run all {len(checks)} submissions")
        return
    arguments = shlex.join(sys.argv[1:]) if sys.argv[1:] else "<these snakemake arguments>"
    raise WorkflowError("\n".join([
        f"hacm preflight: {len(refused)} of {len(checks)} submissions cannot run on this cluster; nothing was "
        "submitted:", *refusal_lines(checks, cluster),
        f"`python -m hacm.campaign preflight {arguments}` prints the profile entries and the command-line lists "
        "that fit; --no-hooks submits without this check."]))
