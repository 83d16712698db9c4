"""Whether the cluster can run each submission of a plan, and if not, why and what would fit.

A submission (one sbatch: a job, or the jobs a profile groups together; local jobs are not submitted)
asks what `hacm.campaign.sbatch_request` says. It fits when one of its partitions (none named: the
default partition) admits its account, allows its runtime and node count, and has nodes that each hold
its CPUs, memory, GPUs (of its type) and features. SLURM never moves a job to another partition: a job no
named partition can run is refused at sbatch (unknown partition, memory, GPUs) or pends for ever (CPUs:
`PartitionConfig`; runtime: `PartitionTimeLimit`). For a refused submission each shortfall comes with the
resource values that fit the partition that needs the fewest changes (the asked one where it exists).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from hacm.campaign.cluster import IDLE_PARTITION_STATES, Cluster, Node, Partition, describe_minutes
from hacm.campaign.cost import JobCost, Submission, submissions
from hacm.campaign.jobs import Plan
from hacm.campaign.sbatch_request import SbatchRequest, sbatch_request

# fix keys that are not resources: a rule's threads (set-threads) and its group's size (group-components)
THREADS, GROUP_COMPONENTS = "threads", "group-components"


@dataclass(frozen=True)
class Shortfall:
    """One reason a partition cannot run a submission, with the values that would fit it ({}: none would)."""

    what: str  # partition, account, runtime, nodes, cpus, memory, gpus, gpu_model, constraint
    text: str
    fix: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One submission against the cluster: the partition that runs it, or why none does and the fix."""

    submission: Submission
    rules: tuple[str, ...]  # its jobs' rules
    threads: int
    request: SbatchRequest
    runs_on: str | None  # None: refused
    target: str | None = None  # the partition the fix is for (None: no partition can take it)
    shortfalls: tuple[Shortfall, ...] = ()

    @property
    def refused(self) -> bool:
        return self.runs_on is None

    @property
    def fix(self) -> dict:
        merged: dict = {}
        for shortfall in self.shortfalls:
            merged.update(shortfall.fix)
        return merged


def constraint_met(expression: str, features: frozenset[str]) -> bool | None:
    """Whether a node with `features` matches a --constraint expression (names joined by & and |,
    parentheses or brackets); None where the expression is beyond that (counts are ignored: one node)."""
    tokens = re.findall(r"[()&|]|[^()&|\s]+", re.sub(r"\*\d+", "", expression).replace("[", "(").replace("]", ")"))
    position = 0

    def either() -> bool:
        nonlocal position
        value = both()
        while position < len(tokens) and tokens[position] == "|":
            position += 1
            value = both() or value
        return value

    def both() -> bool:
        nonlocal position
        value = one()
        while position < len(tokens) and tokens[position] == "&":
            position += 1
            value = one() and value
        return value

    def one() -> bool:
        nonlocal position
        if position >= len(tokens) or tokens[position] in "&|)":
            raise ValueError(expression)
        token = tokens[position]
        position += 1
        if token == "(":
            value = either()
            if position >= len(tokens) or tokens[position] != ")":
                raise ValueError(expression)
            position += 1
            return value
        return token in features

    try:
        value = either()
    except ValueError:
        return None
    return value if position == len(tokens) else None


def _mb(value: float) -> str:
    return f"{value:,.0f} MB"


def _node_shortfalls(request: SbatchRequest, threads: int, node: Node, partition: Partition) -> list[Shortfall]:
    """What one node of `partition` lacks for one node's share of the request, each with the value it holds."""
    found = []
    nodes = partition.nodes
    if request.cpus_per_node > node.cpus:
        units = request.gpus_per_node if request.cpus_from == "cpus_per_gpu" else request.tasks_per_node
        fitting = node.cpus // max(1, units)
        key = "cpus_per_gpu" if request.cpus_from == "cpus_per_gpu" else "cpus_per_task"
        fix = {key: fitting} if fitting >= 1 else {}
        given = fitting if key == "cpus_per_task" else fitting * max(1, units)  # CPUs for the job's one process
        if fix and threads > given:
            fix[THREADS] = given  # its thread count (OMP_NUM_THREADS) follows the CPUs it gets
        found.append(Shortfall("cpus", f"{request.cpus_per_node} CPUs a node ({request.cpus_from}); the nodes of "
                                       f"{partition.name} have at most {max(each.cpus for each in nodes)}", fix))
    if request.memory_mb_per_node is not None and request.memory_mb_per_node > node.memory_mb:
        if request.memory_from == "mem_mb_per_cpu":
            cpus = min(request.cpus_per_node, node.cpus)
            fix = {"mem_mb_per_cpu": node.memory_mb // cpus}
        else:
            fix = {"mem_mb": node.memory_mb}
        most = max(each.memory_mb for each in nodes)
        found.append(Shortfall("memory", f"{_mb(request.memory_mb_per_node)} a node ({request.memory_from}); the nodes "
                                         f"of {partition.name} have at most {_mb(most)}", fix))
    model = request.gpu_model
    if model and node.gpu_count() and not node.gpu_count(model):
        types = Counter({kind: count for kind, count in node.gpus.items() if kind})
        offered = ", ".join(sorted({kind or "untyped" for each in nodes for kind in each.gpus}))
        fix = {"gpu_model": types.most_common(1)[0][0]} if types and request.gpu_from == "gpu" else {}
        found.append(Shortfall("gpu_model", f"GPUs of type {model}; the nodes of {partition.name} have: {offered}",
                               fix))
        model = fix.get("gpu_model")
    if request.gpus_per_node > node.gpu_count(model):
        held = node.gpu_count(model)
        kind = f" {model}" if model else ""
        most = max(each.gpu_count(model) for each in nodes)
        if held == 0:
            fix = {}
        elif request.gpu_from == "gres":
            fix = {"gres": f"gpu:{model + ':' if model else ''}{held}"}
        else:
            fix = {"gpu": held * request.nodes}
        found.append(Shortfall("gpus", f"{request.gpus_per_node}{kind} GPU{'s' if request.gpus_per_node > 1 else ''} a "
                                       f"node ({request.gpu_from}); the nodes of {partition.name} have at most {most}",
                               fix))
    if request.constraint and constraint_met(request.constraint, node.features) is False:
        offered = ", ".join(sorted({feature for each in nodes for feature in each.features})) or "no features"
        found.append(Shortfall("constraint", f"constraint {request.constraint!r}; the nodes of {partition.name} offer: "
                                             f"{offered} (change or remove the constraint resource)"))
    return found


def _group_runtime_fix(submission: Submission, limit: float) -> dict:
    """A group's runtime is its members' summed: fewer members a group, and each within the limit."""
    longest = max(float(cost.job.resources.get("runtime") or 0) for cost in submission.costs)
    if longest <= limit:
        return {GROUP_COMPONENTS: max(1, math.floor(limit / longest)) if longest else 1}
    return {"runtime": math.floor(limit), GROUP_COMPONENTS: 1}


def partition_shortfalls(request: SbatchRequest, threads: int, partition: Partition, cluster: Cluster,
                         submission: Submission | None = None) -> list[Shortfall]:
    """Everything `partition` lacks to run the request (empty: it fits)."""
    found = []
    account = request.account
    if account is not None:
        if cluster.accounts is not None and account not in cluster.accounts:
            usable = sorted(name for name in cluster.accounts if partition.admits(name))
            found.append(Shortfall("account", f"account {account!r} is not one of {cluster.user}'s "
                                              f"({', '.join(sorted(cluster.accounts))})",
                                   {"slurm_account": usable[0]} if usable else {}))
        elif not partition.admits(account):
            usable = sorted(name for name in cluster.accounts or () if partition.admits(name))
            allowed = ", ".join(sorted(partition.allow_accounts or ())) or "none"
            found.append(Shortfall("account", f"partition {partition.name} does not admit account {account!r} "
                                              f"(AllowAccounts {allowed})", {"slurm_account": usable[0]} if usable else {}))
    if request.minutes is not None and partition.max_minutes is not None and request.minutes > partition.max_minutes:
        grouped = submission is not None and len(submission.costs) > 1
        fix = (_group_runtime_fix(submission, partition.max_minutes) if grouped
               else {"runtime": math.floor(partition.max_minutes)})
        serial = f" (its {len(submission.costs)} jobs one after another)" if grouped else ""
        found.append(Shortfall("runtime", f"runtime {describe_minutes(request.minutes)}{serial}; MaxTime of "
                                          f"{partition.name}: {describe_minutes(partition.max_minutes)}", fix))
    if not partition.nodes:
        found.append(Shortfall("nodes", f"partition {partition.name} has no nodes"))
        return found
    limit = min(len(partition.nodes), partition.max_nodes or len(partition.nodes))
    if request.nodes > limit:
        found.append(Shortfall("nodes", f"{request.nodes} nodes; partition {partition.name} gives a job at most "
                                        f"{limit}", {"nodes": limit}))
    per_node = {node.name: _node_shortfalls(request, threads, node, partition) for node in partition.nodes}
    holding = [node for node in partition.nodes if not per_node[node.name]]
    if len(holding) >= min(request.nodes, limit):
        return found
    if holding:  # some nodes hold it, fewer than it asks for
        found.append(Shortfall("nodes", f"{request.nodes} nodes; {len(holding)} of partition {partition.name} hold "
                                        "what it asks of each", {"nodes": len(holding)}))
        return found

    def closeness(node: Node):  # the node needing the fewest changes, then the largest
        lacks = per_node[node.name]
        return (sum(1 for each in lacks if not each.fix), len(lacks), -node.gpu_count(), -node.cpus, -node.memory_mb)

    return found + per_node[min(partition.nodes, key=closeness).name]


def check_submission(submission: Submission, cluster: Cluster) -> Check:
    """Where the cluster runs this submission, or why it does not and the values that would fit."""
    rules = tuple(sorted({cost.job.rule for cost in submission.costs}))
    threads = int(submission.resources.get("_cores") or max(cost.job.threads for cost in submission.costs))
    request = sbatch_request(submission.resources, threads)
    default = cluster.default_partition
    asked = request.partitions or ((default.name,) if default is not None else ())
    for name in asked:
        partition = cluster.partitions.get(name)
        if partition is not None and not partition_shortfalls(request, threads, partition, cluster, submission):
            return Check(submission, rules, threads, request, runs_on=name)

    def changes(partition: Partition):
        lacks = partition_shortfalls(request, threads, partition, cluster, submission)
        return (sum(1 for each in lacks if not each.fix), len(lacks) + (partition.name not in asked),
                partition.state.upper() in IDLE_PARTITION_STATES, not partition.default, partition.name)

    candidates = sorted(cluster.partitions.values(), key=changes)
    if not candidates:
        return Check(submission, rules, threads, request, runs_on=None,
                     shortfalls=(Shortfall("partition", "the cluster has no partitions"),))
    target = candidates[0]
    found = partition_shortfalls(request, threads, target, cluster, submission)
    if target.name not in asked:
        missing = [name for name in asked if name not in cluster.partitions]
        if not asked:
            text = "no slurm_partition, and the cluster has no default partition"
        elif missing:
            text = (f"partition {', '.join(map(repr, missing))} does not exist (the cluster's: "
                    f"{', '.join(name + ('*' if p.default else '') for name, p in cluster.partitions.items())}; "
                    "* default)")
        else:
            text = f"partition {', '.join(asked)} cannot run it; {target.name} can with the fewest changes"
        found.insert(0, Shortfall("partition", text, {"slurm_partition": target.name}))
    return Check(submission, rules, threads, request, runs_on=None, target=target.name, shortfalls=tuple(found))


def submitted(submission: Submission) -> bool:
    """Whether Snakemake sends it to the cluster (local rules and rules without a command run beside it)."""
    return not any(cost.job.local for cost in submission.costs)


def check_plan(plan: Plan, cluster: Cluster) -> list[Check]:
    """Every submission of the plan that goes to the cluster, checked."""
    return [check_submission(each, cluster) for each in submissions(plan, [JobCost(job, None) for job in plan.jobs])
            if submitted(each)]


def cluster_warnings(checks: list[Check], cluster: Cluster) -> list[str]:
    """What may still hold the submissions up: partitions they use that take or start no jobs, partitions
    whose nodes are all unavailable, accounts that could not be checked."""
    warnings = []
    used = Counter(check.runs_on or check.target for check in checks if (check.runs_on or check.target))
    for name in used:
        partition = cluster.partitions[name]
        if partition.state.upper() in IDLE_PARTITION_STATES:
            warnings.append(f"partition {name} is {partition.state}: it takes or starts no jobs until an "
                            "administrator sets it UP")
        elif partition.nodes and not any(node.available for node in partition.nodes):
            states = ", ".join(sorted({node.state for node in partition.nodes}))
            warnings.append(f"every node of partition {name} is unavailable ({states}): its jobs wait")
    if cluster.accounts is None and any(check.request.account for check in checks):
        warnings.append(f"accounts not checked: {cluster.accounts_unknown}")
    return warnings


def describe_request(request: SbatchRequest) -> str:
    """The request as sbatch options say it."""
    parts = [f"partition {','.join(request.partitions) or '(default)'}"]
    if request.account:
        parts.append(f"account {request.account}")
    if request.nodes > 1:
        parts.append(f"{request.nodes} nodes, each")
    parts.append(f"{request.cpus_per_node} CPU{'s' if request.cpus_per_node > 1 else ''}")
    if request.memory_mb_per_node is not None:
        parts.append(_mb(request.memory_mb_per_node))
    if request.gpus_per_node:
        parts.append(f"{request.gpus_per_node}{' ' + request.gpu_model if request.gpu_model else ''} "
                     f"GPU{'s' if request.gpus_per_node > 1 else ''}")
    if request.constraint:
        parts.append(f"constraint {request.constraint!r}")
    parts.append(f"runtime {describe_minutes(request.minutes)}" if request.minutes else "no runtime")
    return ", ".join(parts)


def describe_partition(partition: Partition) -> str:
    """A partition as a line: state, time limit, and its kinds of node."""
    def gpus(node: Node) -> str:
        held = [f"{count}{' ' + kind if kind else ''} GPU{'s' if count > 1 else ''}"
                for kind, count in sorted(node.gpus.items(), key=str)]
        return " + ".join(held) or "no GPUs"

    kinds = Counter(f"{node.cpus} CPUs, {_mb(node.memory_mb)}, {gpus(node)}"
                    + (f", features {','.join(sorted(node.features))}" if node.features else "")
                    for node in partition.nodes)
    nodes = "; ".join(f"{count} node{'s' if count > 1 else ''} of {kind}" for kind, count in kinds.most_common())
    nodes = nodes or "no nodes"
    flags = ["default"] if partition.default else []
    if partition.state.upper() != "UP":
        flags.append(partition.state)
    if partition.allow_accounts is not None:
        flags.append(f"accounts {','.join(sorted(partition.allow_accounts))}")
    return (f"{partition.name}{' (' + ', '.join(flags) + ')' if flags else ''}: MaxTime "
            f"{describe_minutes(partition.max_minutes)}, {nodes}")
