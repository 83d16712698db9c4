"""The jobs a Snakemake submission would run, as the workflow itself resolves them (a dry run).

`planned_jobs(argv)` runs Snakemake's own command line in this process with `--dry-run` added and
collects the record Snakemake logs for every planned job (`LogEvent.JOB_INFO`, snakemake/jobs.py
`Job.log_info`): rule, wildcards, threads, resources after the profile's and the command line's
`set-resources` / `set-threads`, and the shell command with its parameters filled in. Jobs that a
profile's `groups` gather into one cluster job come with that group (`LogEvent.GROUP_INFO`) and the
resources Snakemake gives it (its runtime is what SLURM enforces on them). Nothing is printed: arguments Snakemake rejects raise `CampaignError`, a workflow that fails to plan raises
`PlanningError`, each with Snakemake's first error line. Jobs that Snakemake runs beside the cluster
(`localrules`, rules without a command) are marked local. `dag_plan(workflow)` reads the same record from
a running workflow's DAG (a Snakefile's `onstart` handler, before anything is submitted).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

# Snakemake's dry run defaults --cores to 1 and caps every job's threads at it, while a submission to
# a cluster executor leaves them uncapped; this --cores (given only where the user gave none and the
# executor is not local) lets the dry run resolve threads as the submission will.
UNCAPPED_CORES = str(2**31 - 1)


class CampaignError(ValueError):
    """A usage error (arguments, names, files given to the command); the message is one line."""


class PlanningError(CampaignError):
    """Snakemake could not plan the workflow (a config error, a missing input); the message is one line."""


@dataclass(frozen=True)
class PlannedJob:
    rule: str
    wildcards: dict[str, str]
    threads: int
    resources: dict  # runtime (minutes), gpu, mem_mb, cpus_per_task, slurm_partition, ... as resolved
    shellcmd: str | None
    jobid: int
    group: int | None = None  # index of its PlannedGroup in Plan.groups, when a profile groups it
    local: bool = False  # run by Snakemake itself, never submitted

    def argument(self, flag: str) -> str | None:
        """The value after `flag` in the shell command (`--config`, `--data`, `--json`), or None."""
        words = shlex.split(self.shellcmd or "")
        for here, word in enumerate(words[:-1]):
            if word == flag:
                return words[here + 1]
        return None


@dataclass(frozen=True)
class PlannedGroup:
    """Jobs submitted as one cluster job (a profile's `groups` / `group-components`)."""

    name: str  # the group id, e.g. evaluations_ntu60_xsub (several groups may share it)
    jobids: tuple[int, ...]
    resources: dict | None  # as Snakemake sums them for the submission; None if it could not be read


@dataclass
class Plan:
    """A dry run's outcome: the planned jobs and groups, the folder the workflow runs in, the executor."""

    jobs: list[PlannedJob]
    workdir: Path
    executor: str
    retries: int
    argv: list[str] = field(default_factory=list)
    forceall: bool = False  # every job of the targets, not only those still to run
    groups: list[PlannedGroup] = field(default_factory=list)


def _group_resources(group_id: str, members: list) -> dict | None:
    """The resources Snakemake's cluster executor gives a group job (snakemake/jobs.py GroupJob.resources:
    runtime summed over jobs that cannot run side by side, the rest the largest layer's), or None where
    this Snakemake's internals differ. Computed as for a submission: a dry run's executor is local, and a
    local group sums every resource over its jobs' levels."""
    try:
        from snakemake.jobs import GroupJob
        from snakemake.resources import GroupResources

        group = GroupJob(group_id, frozenset(members), members[0].dag.workflow.global_resources)
        group.finalize()
        return dict(GroupResources.basic_layered(toposorted_jobs=group.toposorted, constraints=group.global_resources,
                                                 run_local=False, additive_resources=["runtime"], sortby=["runtime"]))
    except Exception:  # internals of another Snakemake version: the group is still listed, without totals
        return None


def local_rules(workflow) -> frozenset[str]:
    """Rules whose jobs a cluster run executes in Snakemake's own process (snakemake/workflow.py
    Workflow.is_local: `localrules`, rules without a command, template engines; a rule with a `group:` is
    submitted)."""
    return frozenset(rule.name for rule in workflow.rules if rule.group is None and (
        rule.name in workflow._localrules or rule.norun or rule.is_template_engine))


class _JobRecords(logging.Handler):
    """Keeps the JOB_INFO and GROUP_INFO records of a dry run, and the error messages."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.jobs: list[PlannedJob] = []
        self.groups: list[PlannedGroup] = []
        self.errors: list[str] = []
        self.unreadable: list[str] = []  # records this code could not read (never raised inside Snakemake)

    def emit(self, record: logging.LogRecord) -> None:
        from snakemake_interface_logger_plugins.common import LogEvent

        event = getattr(record, "event", None)
        try:
            if event == LogEvent.JOB_INFO:
                self.jobs.append(PlannedJob(
                    rule=record.rule_name, wildcards=dict(record.wildcards or {}), threads=int(record.threads),
                    resources=dict(record.resources.items()) if record.resources is not None else {},
                    shellcmd=record.shellcmd, jobid=int(record.jobid)))
            elif event == LogEvent.GROUP_INFO:
                members = list(record.jobs)
                self.groups.append(PlannedGroup(name=str(record.group_id),
                                                jobids=tuple(sorted(int(job.jobid) for job in members)),
                                                resources=_group_resources(record.group_id, members)))
            elif record.levelno >= logging.ERROR:
                self.errors.append(record.getMessage())
        except Exception as error:
            self.unreadable.append(f"{event}: {type(error).__name__}: {error}")

    def grouped_jobs(self, local: frozenset[str]) -> list[PlannedJob]:
        where = {jobid: index for index, group in enumerate(self.groups) for jobid in group.jobids}
        return [replace(job, group=where.get(job.jobid), local=job.rule in local) for job in self.jobs]


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_.]*(Error|Exception): \S")


def _first_error_line(messages: list[str], output: str) -> str:
    """Snakemake's first error line: of its first error record, else of its output. A traceback gives
    its exception line; a line followed by the exception that explains it ("Error validating config
    file." then "ValidationError: ...") gets it appended."""
    for text in [*messages, output]:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if any(line.startswith("Traceback") for line in lines):
            exceptions = [line for line in lines if _EXCEPTION_LINE.match(line)]
            if exceptions:
                return exceptions[-1]
        for here, line in enumerate(lines):
            # "WorkflowError in file .../common.smk, line 18:" only says where the error is.
            if line.endswith(":") or line.startswith("Config file "):
                continue
            following = lines[here + 1] if here + 1 < len(lines) else ""
            return f"{line} {following}" if _EXCEPTION_LINE.match(following) else line
    return "snakemake failed without an error message"


def parsed_arguments(argv: list[str]):
    """Snakemake's own reading of the arguments, profiles applied: its parser (which knows where each
    setting came from) and the arguments; its usage errors as CampaignError."""
    from snakemake.cli import parse_args

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            return parse_args(argv)
    except SystemExit:  # argparse's usage error: its last line says what is wrong
        lines = captured.getvalue().strip().splitlines()
        problem = lines[-1].split("error: ", 1)[-1] if lines else "the arguments were rejected"
        raise CampaignError(f"snakemake: {problem}") from None
    except Exception as error:  # a profile that does not parse
        raise CampaignError(f"snakemake: {_first_error_line([str(error)], '')}") from None


def _is_local(executor: str | None) -> bool:
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    try:
        return ExecutorPluginRegistry().get_plugin(executor or "local").common_settings.local_exec
    except Exception:  # an executor this installation lacks: Snakemake itself reports it in the dry run
        return True


def dry_run_arguments(argv: list[str], args, *, forceall: bool = False) -> list[str]:
    """The user's Snakemake arguments (`args`: as Snakemake parsed them) made into a dry run that resolves
    jobs as the submission would."""
    # --use-conda would make the dry run look for conda; so would the profile's software-deployment-method,
    # which --sdm replaces. A dry run deploys nothing, no rule uses envmodules, and many clusters (this
    # project's machines too) have no conda, so env-modules changes nothing but that check.
    words = [word for word in argv if word != "--use-conda"] + ["--dry-run", "--sdm", "env-modules"]
    if args.cores is None and not _is_local(args.executor):
        words += ["--cores", UNCAPPED_CORES]
    if forceall:
        words.append("--forceall")
    return words


def planned_jobs(argv: list[str], *, forceall: bool = False) -> Plan:
    """Every job a submission of `snakemake ARGV` would run (with --forceall: every job of the targets),
    from a dry run in this process."""
    import snakemake.cli
    import snakemake.workflow

    args = parsed_arguments(argv)[1]
    before = getattr(snakemake.workflow, "workflow", None)
    workdir = Path(args.directory or os.getcwd()).resolve()
    records = _JobRecords()
    # Snakemake's logger manager replaces the handlers of its own logger ("snakemake.logging") when it
    # starts; a handler on the parent logger receives every record it propagates and is left alone.
    parent = logging.getLogger("snakemake")
    parent.addHandler(records)
    captured = io.StringIO()
    cwd = os.getcwd()
    code: int | str | None = None
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            try:
                snakemake.cli.main(dry_run_arguments(argv, args, forceall=forceall))
            except SystemExit as exit_:
                code = exit_.code
    finally:
        parent.removeHandler(records)
        os.chdir(cwd)
    if code not in (0, None):
        raise PlanningError(f"snakemake: {_first_error_line(records.errors, captured.getvalue())}")
    if records.unreadable:
        raise PlanningError(f"this Snakemake logs its planned jobs differently: {records.unreadable[0]}")
    # the dry run's workflow (snakemake/workflow.py keeps the latest in its module) knows the local rules
    workflow = getattr(snakemake.workflow, "workflow", None)
    try:
        if workflow is None or workflow is before:
            raise AttributeError("no workflow in snakemake.workflow")
        local = local_rules(workflow)
    except AttributeError as error:
        raise PlanningError(f"this Snakemake keeps its local rules differently: {error}") from None
    return Plan(jobs=records.grouped_jobs(local), workdir=workdir, executor=args.executor or "local",
                retries=int(args.retries or 0), argv=list(argv), forceall=forceall, groups=records.groups)


def dag_plan(workflow) -> Plan:
    """The jobs a running workflow is about to run, read from its DAG as planned_jobs reads a dry run's
    (for a Snakefile's `onstart` handler, which runs before the first submission): each job's resources and
    threads, whether it is local, and each group with the resources its submission asks for."""
    dag = workflow.dag
    groups: list[PlannedGroup] = []
    where: dict[int, int] = {}  # id of a GroupJob -> its index in groups
    jobs = []
    for job in dag.needrun_jobs():
        group = dag.get_job_group(job)
        if group is not None and id(group) not in where:
            where[id(group)] = len(groups)
            jobids = tuple(sorted(dag.jobid(each) for each in group.jobs))
            groups.append(PlannedGroup(name=str(group.groupid), jobids=jobids, resources=dict(group.resources.items())))
        jobs.append(PlannedJob(rule=job.rule.name, wildcards=dict(job.wildcards_dict), threads=int(job.threads),
                               resources=dict(job.resources.items()), shellcmd=None, jobid=int(dag.jobid(job)),
                               group=None if group is None else where[id(group)], local=bool(job.is_local)))
    return Plan(jobs=jobs, workdir=Path(os.getcwd()), executor=workflow.executor_plugin.name,
                retries=int(workflow.execution_settings.retries or 0), groups=groups)
