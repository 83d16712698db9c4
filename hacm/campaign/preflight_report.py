"""The preflight's report: the cluster, per rule what is asked and why no partition takes it, the fix,
the cost, and one verdict line last; and the same as JSON."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from hacm.campaign.cluster import Cluster, describe_minutes
from hacm.campaign.jobs import Plan
from hacm.campaign.preflight import Check, describe_partition, describe_request


@dataclass
class RuleChecks:
    """The checks of one rule's submissions (a group's: of its members' rules)."""

    rule: str
    checks: list[Check]

    @property
    def jobs(self) -> int:
        return sum(len(check.submission.costs) for check in self.checks)

    @property
    def refused(self) -> list[Check]:
        return [check for check in self.checks if check.refused]

    @property
    def grouped(self) -> bool:
        return any(check.submission.costs[0].job.group is not None for check in self.checks)

    @property
    def largest(self) -> Check:
        """The refused submission asking the most time (a group's size varies), else the first."""
        return max(self.refused or self.checks, key=lambda check: check.request.minutes or 0)

    def shortfalls(self):
        """Each kind of shortfall once, the largest submission's first."""
        seen, found = set(), []
        for check in [self.largest, *self.refused]:
            for shortfall in check.shortfalls:
                if shortfall.what not in seen:
                    seen.add(shortfall.what)
                    found.append(shortfall)
        return found

    def fix(self) -> dict:
        """The values that fit all its refused submissions (the lowest amount of each)."""
        merged: dict = {}
        for check in self.refused:
            for key, value in check.fix.items():
                if key not in merged or not isinstance(value, str):  # a name: the first; an amount: the lowest
                    merged[key] = value if key not in merged else min(merged[key], value)
        return merged

    def heading(self) -> str:
        count = len(self.checks)
        kind = "group submission" if self.grouped else "submission"
        where = f"{self.jobs} job{'s' if self.jobs > 1 else ''}" + (" in " if self.grouped else ", ")
        state = (f"{len(self.refused)} refused" if self.refused else
                 f"runs on {', '.join(sorted({check.runs_on for check in self.checks}))}")
        return f"{self.rule}: {where}{count} {kind}{'s' if count > 1 else ''}, {state}"


def rule_checks(checks: list[Check]) -> list[RuleChecks]:
    """Per rule, the rules with refused submissions first, then by jobs."""
    rules: dict[str, RuleChecks] = {}
    for check in checks:
        name = ", ".join(check.rules)
        rules.setdefault(name, RuleChecks(name, [])).checks.append(check)
    return sorted(rules.values(), key=lambda each: (not each.refused, -each.jobs, each.rule))


def _values(fix: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in fix.items())


def refusal_lines(checks: list[Check], cluster: Cluster) -> list[str]:
    """Per rule with refused submissions: what it asks, what the partition nearest to fitting offers, why
    that is not enough, and the values that fit it."""
    lines = []
    for each in rule_checks(checks):
        if not each.refused:
            continue
        lines.append(each.heading())
        lines.append(f"  asks     {describe_request(each.largest.request)}")
        target = cluster.partitions.get(each.largest.target or "")
        if target is not None:
            lines.append(f"  offers   {describe_partition(target)}")
        for here, shortfall in enumerate(each.shortfalls()):
            lines.append(f"  {'why' if here == 0 else '':<8} {shortfall.text}")
        fix = each.fix()
        lines.append(f"  fix      {_values(fix)}" if fix else "  fix      none: no partition can take it")
    return lines


def cluster_lines(cluster: Cluster) -> list[str]:
    accounts = (", ".join(sorted(cluster.accounts)) if cluster.accounts is not None
                else f"not known ({cluster.accounts_unknown})")
    count = len(cluster.partitions)
    lines = [f"Cluster: {count} partition{'s' if count != 1 else ''} (scontrol); {cluster.user}'s accounts: {accounts}"]
    lines += [f"  {describe_partition(partition)}" for partition in cluster.partitions.values()]
    return lines


def _yaml_lines(entries: dict) -> list[str]:
    text = yaml.safe_dump(entries, sort_keys=False, default_flow_style=False)
    return [f"  {line}" for line in text.splitlines()]


@dataclass
class Outcome:
    """What the preflight found: the checks, and for refused ones the fix and whether it was checked."""

    plan: Plan
    cluster: Cluster
    checks: list[Check]
    warnings: list[str]
    profile: dict  # the changed profile entries (empty: none)
    arguments: list[str]  # the whole changed lists, to append to the snakemake command
    manual: list[str]  # what no setting fixes
    fixed: list[Check] | None = None  # the checks of a second dry run with the fix; None: not run

    @property
    def refused(self) -> list[Check]:
        return [check for check in self.checks if check.refused]

    @property
    def fix_fits(self) -> bool | None:
        return None if self.fixed is None else not any(check.refused for check in self.fixed)

    def verdict(self) -> str:
        local = sum(1 for job in self.plan.jobs if job.local)
        beside = f"; {local} local jobs run in Snakemake's own process" if local else ""
        if not self.checks:
            return f"preflight: fits: nothing to submit{beside}"
        rules = rule_checks(self.checks)
        if not self.refused:
            places = sorted({check.runs_on for check in self.checks})
            return (f"preflight: fits: {len(self.checks)} submissions of {len(rules)} rules, on partition "
                    f"{', '.join(places)}{beside}")
        named = [each.rule for each in rules if each.refused]
        then = {True: "the fix above makes every one fit", False: "the fix above is not enough",
                None: "no setting fixes it"}[self.fix_fits]
        return (f"preflight: refused: {len(self.refused)} of {len(self.checks)} submissions ({', '.join(named)}) "
                f"cannot run on this cluster as planned; {then}")


def report_text(outcome: Outcome, cost_text: str, command: str) -> str:
    lines = cluster_lines(outcome.cluster)
    lines += [f"  warning: {warning}" for warning in outcome.warnings]
    lines.append("")
    if outcome.refused:
        lines.append("Submissions no partition can run (SLURM refuses them at sbatch, or they pend for ever):")
        lines += refusal_lines(outcome.checks, outcome.cluster)
    fitting = [each for each in rule_checks(outcome.checks) if not each.refused]
    if fitting:
        lines.append("Fit: " + "; ".join(each.heading() for each in fitting))
    if outcome.profile:
        lines += ["", "The fix, in your copy of the profile (each entry replaces the one of that name there):"]
        lines += _yaml_lines(outcome.profile)
        lines += ["or appended to the snakemake command, the whole lists (a list given on the command line "
                  "replaces the profile's whole list):", f"  {command}"]
        if outcome.fix_fits is True:
            lines.append("Checked: planned again with these, every submission fits.")
        elif outcome.fix_fits is False:
            lines.append("Planned again with these, still refused:")
            lines += [f"  {line}" for line in refusal_lines(outcome.fixed, outcome.cluster)]
    if outcome.manual:
        lines += ["", "No setting fixes:"] + [f"  {item}" for item in outcome.manual]
    lines += ["", cost_text, "", outcome.verdict()]
    return "\n".join(lines)


def _check_entry(check: Check) -> dict:
    request = check.request
    return {"submission": check.submission.label, "rules": list(check.rules), "jobs": len(check.submission.costs),
            "threads": check.threads, "runs_on": check.runs_on, "target": check.target,
            "asks": {"partitions": list(request.partitions), "account": request.account, "minutes": request.minutes,
                     "nodes": request.nodes, "cpus_per_node": request.cpus_per_node,
                     "memory_mb_per_node": request.memory_mb_per_node, "gpus_per_node": request.gpus_per_node,
                     "gpu_model": request.gpu_model, "constraint": request.constraint},
            "shortfalls": [{"what": each.what, "text": each.text, "fix": each.fix} for each in check.shortfalls]}


def report_document(outcome: Outcome, cost_document: dict) -> dict:
    cluster = outcome.cluster
    return {
        "fits": not outcome.refused,
        "verdict": outcome.verdict(),
        "cluster": {"user": cluster.user,
                    "accounts": None if cluster.accounts is None else sorted(cluster.accounts),
                    "accounts_unknown": cluster.accounts_unknown,
                    "partitions": [{"name": p.name, "default": p.default, "state": p.state,
                                    "max_minutes": p.max_minutes, "max_time": describe_minutes(p.max_minutes),
                                    "max_nodes": p.max_nodes,
                                    "allow_accounts": None if p.allow_accounts is None else sorted(p.allow_accounts),
                                    "nodes": [{"name": n.name, "cpus": n.cpus, "memory_mb": n.memory_mb,
                                               "gpus": {kind or "": count for kind, count in n.gpus.items()},
                                               "features": sorted(n.features), "state": n.state} for n in p.nodes]}
                                   for p in cluster.partitions.values()]},
        "warnings": outcome.warnings,
        "rules": [{"rule": each.rule, "jobs": each.jobs, "submissions": len(each.checks),
                   "refused": len(each.refused), "fix": each.fix()} for each in rule_checks(outcome.checks)],
        "fix": {"profile": outcome.profile, "arguments": outcome.arguments, "fits": outcome.fix_fits,
                "manual": outcome.manual},
        "submissions": [_check_entry(check) for check in outcome.checks],
        "cost": cost_document,
    }
