"""A planned campaign's cost: per job, per rule and in total, and the submissions longer than their limit.

A job's time on the chosen device is its FLOPs (`hacm.campaign.work`) over the device's FLOP rate at the
job's precision and batch (`hacm.campaign.throughput`); its GPU-hours are that time. A submission (one
cluster job: a job, or the jobs a profile groups together) with `resources: gpu=N` uses its N GPUs at ideal
speed-up, so its wall time is its jobs' GPU-hours over N, and its `runtime` resource (minutes, the SLURM
time limit; a group's is what Snakemake sums for it) is compared with that. A submission longer than its
runtime needs ceil(wall / runtime) runs of at most `runtime` minutes: a pretraining or evaluation run saves
a checkpoint at the limit and continues from it when run again (hacm/train/stopping.py), each continuation
one more run. The FLOP scaling assumes a device as efficient at the run's size as at the size it was
measured at: fair for the paper's models, not for tiny ones (the smoke config's steps are overhead, which
no FLOP count sees).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from hacm.campaign.jobs import Plan, PlannedJob
from hacm.campaign.throughput import Device
from hacm.campaign.work import JobWork, RunDocuments, job_work

LISTED_LONG_SUBMISSIONS = 20  # the longest; the JSON has them all


@dataclass(frozen=True)
class JobCost:
    job: PlannedJob
    work: JobWork | None  # None: a rule without GPU work
    gpu_hours: float | None = None  # None: not estimated (see `missing`), or no device named
    missing: str | None = None


@dataclass(frozen=True)
class Submission:
    """One cluster job: a planned job, or a group of them, with the resources it is submitted with."""

    label: str
    costs: tuple[JobCost, ...]
    resources: dict

    @property
    def gpu_hours(self) -> float | None:
        """Its jobs' GPU-hours; None when one of them is not estimated (or none has GPU work)."""
        working = [cost for cost in self.costs if cost.work is not None]
        if not working or any(cost.gpu_hours is None for cost in working):
            return None
        return sum(cost.gpu_hours for cost in working)

    @property
    def gpus(self) -> int:
        return max(1, int(self.resources.get("gpu") or 1))

    @property
    def wall_minutes(self) -> float | None:
        return None if self.gpu_hours is None else 60 * self.gpu_hours / self.gpus

    @property
    def runtime(self) -> float | None:
        value = self.resources.get("runtime")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def runs_needed(self) -> int:
        """Runs of at most `runtime` minutes it needs (1 when it fits or has no runtime)."""
        if self.wall_minutes is None or not self.runtime:
            return 1
        return max(1, math.ceil(self.wall_minutes / self.runtime))


def job_hours(work: JobWork, device: Device) -> tuple[float | None, str | None]:
    """GPU-hours of a job's work on `device`, or None and why not."""
    seconds = 0.0
    for part in work.passes:
        rate = device.rate(part.precision, part.batch_size, part.compile)
        if rate is None:
            measured = sorted({rate.precision for rate in device.rates})
            return None, f"{device.name} has no {part.precision} speed (measured: {', '.join(measured)})"
        seconds += part.flops / rate.flops_per_s
    return seconds / 3600, None


def campaign_costs(plan: Plan, device: Device | None) -> list[JobCost]:
    documents = RunDocuments(plan.jobs, plan.workdir)
    costs = []
    for job in plan.jobs:
        work = job_work(job, documents)
        if work is None:
            costs.append(JobCost(job, None))
        elif work.missing is not None:
            costs.append(JobCost(job, work, missing=work.missing))
        elif device is None:
            costs.append(JobCost(job, work))
        else:
            hours, missing = job_hours(work, device)
            costs.append(JobCost(job, work, gpu_hours=hours, missing=missing))
    return costs


def job_label(job: PlannedJob) -> str:
    return " ".join([job.rule] + [f"{key}={value}" for key, value in job.wildcards.items()])


def submissions(plan: Plan, costs: list[JobCost]) -> list[Submission]:
    """The cluster jobs of a plan: each ungrouped job, and each group with the resources Snakemake gave it
    (where those could not be read: the runtimes of its jobs summed, as they run one after another)."""
    members: dict[int, list[JobCost]] = {}
    result = []
    for cost in costs:
        if cost.job.group is None:
            result.append(Submission(job_label(cost.job), (cost,), cost.job.resources))
        else:
            members.setdefault(cost.job.group, []).append(cost)
    for index, group_costs in members.items():
        group = plan.groups[index]
        resources = group.resources or {"runtime": sum(cost.job.resources.get("runtime") or 0 for cost in group_costs),
                                         "gpu": max(cost.job.resources.get("gpu") or 1 for cost in group_costs)}
        result.append(Submission(f"group {group.name} ({len(group_costs)} jobs)", tuple(group_costs), resources))
    return result


@dataclass
class RuleTotal:
    jobs: int = 0
    estimated: int = 0  # jobs whose work is known
    samples: int = 0
    flops: float = 0.0
    gpu_hours: float = 0.0
    timed: int = 0  # jobs with hours


def rule_totals(costs: list[JobCost]) -> dict[str, RuleTotal]:
    """Per rule: the rules with the most FLOPs first, then the others by name."""
    totals: dict[str, RuleTotal] = {}
    for cost in costs:
        total = totals.setdefault(cost.job.rule, RuleTotal())
        total.jobs += 1
        if cost.work is not None and cost.work.missing is None:
            total.estimated += 1
            total.samples += cost.work.samples
            total.flops += cost.work.flops
        if cost.gpu_hours is not None:
            total.timed += 1
            total.gpu_hours += cost.gpu_hours
    return dict(sorted(totals.items(), key=lambda item: (-item[1].flops, item[0])))


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def report_text(plan: Plan, costs: list[JobCost], device: Device | None) -> str:
    """The human-readable cost table."""
    totals = rule_totals(costs)
    hours_head = f"{device.kind}-hours" if device is not None else ""
    scope = "every job of the targets (--all)" if plan.forceall else "the jobs still to run"
    lines = [f"{len(plan.jobs)} jobs planned by `snakemake {' '.join(plan.argv)}`: {scope} (a dry run in "
             f"{plan.workdir})", "",
             f"{'rule':<18} {'jobs':>6} {'samples':>16} {'PFLOP':>10} {hours_head:>10}"]
    for rule, total in totals.items():
        gpu_work = total.estimated > 0
        hours = _number(total.gpu_hours) if device is not None and total.timed else ""
        lines.append(f"{rule:<18} {total.jobs:>6} {f'{total.samples:,}' if gpu_work else '-':>16} "
                     f"{_number(total.flops / 1e15) if gpu_work else '-':>10} {hours:>10}")
    hours = _number(sum(total.gpu_hours for total in totals.values())) if device is not None else ""
    lines.append(f"{'total':<18} {len(costs):>6} {sum(total.samples for total in totals.values()):>16,} "
                 f"{_number(sum(total.flops for total in totals.values()) / 1e15):>10} {hours:>10}")
    missing = [cost for cost in costs if cost.missing is not None]
    if missing:
        lines += ["", f"Not estimated: {len(missing)} jobs (left out of the totals):"]
        lines += [f"  {count} x {reason}" for reason, count in Counter(cost.missing for cost in missing).most_common()]
    if device is None:
        lines += ["", "GPU-hours: no device named. Give --gpu NAME (the throughput table's devices) or "
                      "--throughput-from benchmarks/results/<file>.json (a `bash benchmarks/speed/gpu_check.sh` summary)."]
        return "\n".join(lines)
    long = sorted((each for each in submissions(plan, costs) if each.runs_needed > 1), key=lambda each: -each.wall_minutes)
    lines.append("")
    if long:
        lines.append(f"Longer than their runtime: {len(long)} submissions (estimate / runtime; each continuation is one "
                     "more run of at most runtime):")
        for each in long[:LISTED_LONG_SUBMISSIONS]:
            lines.append(f"  {each.label:<60} {each.wall_minutes / 60:7.1f} h / {each.runtime / 60:5.1f} h"
                         f"   {each.runs_needed - 1} continuations")
        if len(long) > LISTED_LONG_SUBMISSIONS:
            lines.append(f"  ... and {len(long) - LISTED_LONG_SUBMISSIONS} more (--json lists them all)")
    else:
        lines.append("Every estimated submission fits in its runtime.")
    lines += ["", f"Device: {device.name}: {device.description}"]
    for rate in device.rates:
        lines.append(f"  {rate.precision} at batch {rate.batch_size}{' (compiled)' if rate.compile else ''}: "
                     f"{rate.samples_per_s:g} samples/s of T={rate.model.frames}, t_patch {rate.model.t_patch}, "
                     f"decoder depth {rate.model.decoder_depth} = {rate.flops_per_s / 1e12:.3g} TFLOP/s; "
                     f"source: {rate.source}")
    lines.append("  other sizes and the evaluation passes scaled by FLOPs per sample (hacm/campaign/flops.py)")
    return "\n".join(lines)


def _estimate(each: Submission) -> dict:
    return {"gpu_hours": each.gpu_hours, "wall_minutes": each.wall_minutes, "runtime": each.runtime,
            "runs_needed": each.runs_needed, "continuations": each.runs_needed - 1}


def report_document(plan: Plan, costs: list[JobCost], device: Device | None) -> dict:
    """The same as JSON: every job (its resources and command too, for a preflight) and every group, with
    the estimates."""
    alone = {each.costs[0].job.jobid: each for each in submissions(plan, costs) if each.costs[0].job.group is None}

    def job_entry(cost: JobCost) -> dict:
        job, work = cost.job, cost.work
        entry = {"rule": job.rule, "jobid": job.jobid, "wildcards": job.wildcards, "threads": job.threads,
                 "resources": {key: value for key, value in job.resources.items() if not key.startswith("_")},
                 "shellcmd": job.shellcmd, "group": job.group}
        if work is not None:
            entry["work"] = {"samples": work.samples, "flops": work.flops, "sizes": work.sizes,
                             "passes": [{"what": part.what, "samples": part.samples, "precision": part.precision,
                                         "batch_size": part.batch_size, "flops_per_sample": part.flops_per_sample}
                                        for part in work.passes]}
            entry.update(gpu_hours=cost.gpu_hours, not_estimated=cost.missing)
            if job.group is None:  # a grouped job's limit is its group's
                entry.update(_estimate(alone[job.jobid]))
        return entry

    grouped = [each for each in submissions(plan, costs) if each.costs[0].job.group is not None]
    totals = rule_totals(costs)
    return {
        "argv": plan.argv, "forceall": plan.forceall, "workdir": str(plan.workdir), "executor": plan.executor,
        "retries": plan.retries,
        "device": None if device is None else {
            "name": device.name, "kind": device.kind, "description": device.description,
            "rates": [{"precision": rate.precision, "batch_size": rate.batch_size, "compile": rate.compile,
                       "samples_per_s": rate.samples_per_s, "flops_per_s": rate.flops_per_s, "source": rate.source}
                      for rate in device.rates]},
        "rules": {rule: vars(total) for rule, total in totals.items()},
        "total": {"jobs": len(costs), "samples": sum(total.samples for total in totals.values()),
                  "flops": sum(total.flops for total in totals.values()),
                  "gpu_hours": None if device is None else sum(total.gpu_hours for total in totals.values()),
                  "not_estimated": sum(1 for cost in costs if cost.missing is not None),
                  "beyond_runtime": sum(1 for each in submissions(plan, costs) if each.runs_needed > 1)},
        "groups": [{"name": plan.groups[each.costs[0].job.group].name,
                    "jobids": list(plan.groups[each.costs[0].job.group].jobids),
                    "resources": {key: value for key, value in each.resources.items() if not key.startswith("_")},
                    **_estimate(each)} for each in grouped],
        "jobs": [job_entry(cost) for cost in costs],
    }
