"""What a SLURM cluster offers, as its own commands say: partitions with their limits and nodes, each node's
CPUs, memory, GPUs and features, and the accounts the user may submit with.

`read_cluster()` asks `scontrol show partition -o`, `scontrol show node -o` and `sacctmgr`; a SLURM that
cannot be asked (no `scontrol`, no slurmctld answering) raises `SlurmUnreachable` with one line. Accounts
that cannot be asked (no accounting) are not a failure: the cluster says why they are unknown.
"""

from __future__ import annotations

import getpass
import math
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

ANSWER_SECONDS = 30  # a slurmctld that answers nothing in this long is as good as unreachable
# partition states in which SLURM takes no new jobs or starts none
IDLE_PARTITION_STATES = ("DOWN", "DRAIN", "INACTIVE")
# node states that run nothing (scontrol joins flags with '+': IDLE+DRAIN, DOWN+NOT_RESPONDING)
UNAVAILABLE_NODE_STATES = ("DOWN", "DRAIN", "FAIL", "FUTURE", "POWERED_DOWN", "NOT_RESPONDING", "INVAL")


class SlurmUnreachable(RuntimeError):
    """SLURM cannot be asked (its commands are missing or fail); the message is one line."""


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int  # CPUTot
    memory_mb: int  # RealMemory: what --mem may ask of the node
    gpus: dict[str | None, int] = field(default_factory=dict)  # GPU type (None: untyped) -> count
    features: frozenset[str] = frozenset()  # AvailableFeatures, what --constraint matches
    state: str = "IDLE"
    partitions: tuple[str, ...] = ()

    def gpu_count(self, model: str | None = None) -> int:
        """GPUs of this type (any type: None)."""
        return sum(count for kind, count in self.gpus.items() if model is None or kind == model)

    @property
    def available(self) -> bool:
        return not any(flag in self.state.upper().split("+") for flag in UNAVAILABLE_NODE_STATES)


@dataclass(frozen=True)
class Partition:
    name: str
    nodes: tuple[Node, ...]
    max_minutes: float | None  # MaxTime; None: UNLIMITED
    max_nodes: int | None = None  # MaxNodes per job; None: UNLIMITED
    state: str = "UP"
    allow_accounts: frozenset[str] | None = None  # None: ALL
    deny_accounts: frozenset[str] = frozenset()
    default: bool = False

    def admits(self, account: str) -> bool:
        return account not in self.deny_accounts and (self.allow_accounts is None or account in self.allow_accounts)


@dataclass(frozen=True)
class Cluster:
    partitions: dict[str, Partition]
    user: str
    accounts: frozenset[str] | None  # the user's associations; None: not known (see accounts_unknown)
    accounts_unknown: str | None = None  # why the accounts could not be asked

    @property
    def default_partition(self) -> Partition | None:
        """The partition SLURM uses for a job that names none (Default=YES)."""
        return next((partition for partition in self.partitions.values() if partition.default), None)


def scontrol_records(text: str) -> list[dict[str, str]]:
    """`scontrol show ... -o` output: one record a line of Key=Value fields. A value may hold spaces
    (OS=Linux 6.1 #1 SMP ...): a word without '=' belongs to the value before it."""
    records = []
    for line in text.splitlines():
        record: dict[str, str] = {}
        key = None
        for word in line.split():
            name, equals, value = word.partition("=")
            if equals and re.fullmatch(r"[A-Za-z][\w/:.]*", name):
                key, record[name] = name, value
            elif key is not None:
                record[key] += f" {word}"
        if record:
            records.append(record)
    return records


def parse_gres(text: str) -> dict[str | None, int]:
    """A node's Gres ("gpu:2", "gpu:a100:4(S:0-1),gpu:v100:2", "(null)") as GPUs per type; other generic
    resources (shard, mps) are not GPUs."""
    gpus: dict[str | None, int] = {}
    for entry in re.sub(r"\([^)]*\)", "", text or "").split(","):
        parts = entry.strip().split(":")
        if parts[0] != "gpu":
            continue
        if len(parts) == 1:
            kind, count = None, "1"
        elif len(parts) == 2:
            kind, count = (None, parts[1]) if parts[1].isdigit() else (parts[1], "1")
        else:
            kind, count = parts[1], parts[2]
        digits = re.match(r"\d+", count)
        gpus[kind] = gpus.get(kind, 0) + (int(digits.group()) if digits else 1)
    return gpus


def parse_time_limit(text: str) -> float | None:
    """A partition's MaxTime ("UNLIMITED", "INFINITE", "[days-]hours:minutes:seconds", "minutes:seconds",
    "minutes") in minutes; None for no limit."""
    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "NONE", ""):
        return None
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not match:
        raise ValueError(f"unreadable time limit {text!r}")
    days, first, second, third = match.groups()
    if days is not None:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
    elif third is not None:  # hours:minutes:seconds
        hours, minutes, seconds = int(first), int(second), int(third)
    elif second is not None:  # minutes:seconds
        hours, minutes, seconds = 0, int(first), int(second)
    else:  # minutes
        hours, minutes, seconds = 0, int(first), 0
    return int(days or 0) * 1440 + hours * 60 + minutes + seconds / 60


def _limit(text: str | None) -> int | None:
    return None if text is None or not text.isdigit() else int(text)


def _names(text: str | None) -> frozenset[str] | None:
    """A comma list ("ALL" or absent: None)."""
    if text is None or text.upper() == "ALL":
        return None
    return frozenset(name for name in text.split(",") if name and name != "(null)")


def nodes_from(text: str) -> list[Node]:
    nodes = []
    for record in scontrol_records(text):
        features = record.get("AvailableFeatures", "(null)")
        nodes.append(Node(
            name=record.get("NodeName", "?"), cpus=int(record.get("CPUTot", 0) or 0),
            memory_mb=int(record.get("RealMemory", 0) or 0), gpus=parse_gres(record.get("Gres", "")),
            features=frozenset() if features == "(null)" else frozenset(features.split(",")),
            state=record.get("State", "UNKNOWN"),
            partitions=tuple(name for name in record.get("Partitions", "").split(",") if name)))
    return nodes


def partitions_from(text: str, nodes: list[Node]) -> dict[str, Partition]:
    """The partitions, each with its nodes (a node names its partitions, so `Nodes=gpu[01-16]` needs no
    host-list expansion)."""
    partitions = {}
    for record in scontrol_records(text):
        name = record.get("PartitionName", "?")
        partitions[name] = Partition(
            name=name, nodes=tuple(node for node in nodes if name in node.partitions),
            max_minutes=parse_time_limit(record.get("MaxTime", "UNLIMITED")),
            max_nodes=_limit(record.get("MaxNodes")), state=record.get("State", "UP"),
            allow_accounts=_names(record.get("AllowAccounts")),
            deny_accounts=_names(record.get("DenyAccounts")) or frozenset(),
            default=record.get("Default", "NO").upper() == "YES")
    return partitions


Runner = Callable[[list[str]], subprocess.CompletedProcess]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=ANSWER_SECONDS, check=False)


def _ask(command: list[str], run: Runner) -> str:
    """A SLURM command's output; SlurmUnreachable when it is missing, fails or does not answer."""
    shown = " ".join(command)
    try:
        result = run(command)
    except FileNotFoundError:
        raise SlurmUnreachable(f"SLURM is not reachable from here: no `{command[0]}` command on PATH") from None
    except subprocess.TimeoutExpired:
        raise SlurmUnreachable(f"SLURM is not reachable: `{shown}` did not answer within {ANSWER_SECONDS} s") from None
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr or result.stdout or "").splitlines() if line.strip()]
        # scontrol's last line is its conclusion ("fatal: Could not establish a configuration source"); the
        # line that explains it comes first ("Unable to contact slurm controller", "DNS SRV lookup failed")
        reason = next((line for line in lines if "error:" in line), lines[-1] if lines else f"exit {result.returncode}")
        raise SlurmUnreachable(f"SLURM is not reachable: `{shown}` failed: {reason}")
    return result.stdout


def user_accounts(user: str, run: Runner) -> tuple[frozenset[str] | None, str | None]:
    """The accounts `user` has an association with, or None and why they could not be asked."""
    command = ["sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", "format=account"]
    try:
        result = run(command)
    except (FileNotFoundError, subprocess.TimeoutExpired) as error:
        return None, f"`sacctmgr` could not be asked ({type(error).__name__})"
    lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
    if result.returncode != 0:
        return None, f"`sacctmgr` failed: {lines[-1] if lines else f'exit {result.returncode}'}"
    accounts = frozenset(line.strip() for line in result.stdout.splitlines() if line.strip())
    if not accounts:
        return None, f"`sacctmgr` lists no association for {user} (no accounting here?)"
    return accounts, None


def read_cluster(run: Runner = _run) -> Cluster:
    """The cluster as its commands describe it now."""
    nodes = nodes_from(_ask(["scontrol", "show", "node", "-o"], run))
    partitions = partitions_from(_ask(["scontrol", "show", "partition", "-o"], run), nodes)
    user = getpass.getuser()
    accounts, unknown = user_accounts(user, run)
    return Cluster(partitions=partitions, user=user, accounts=accounts, accounts_unknown=unknown)


def describe_minutes(minutes: float | None) -> str:
    """Minutes as a time limit is read: "UNLIMITED", "30 min", "2 h 30 min", "1 d"."""
    if minutes is None:
        return "UNLIMITED"
    if minutes < 60:
        return f"{minutes:g} min"
    days, rest = divmod(math.floor(minutes), 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{value} {unit}" for value, unit in ((days, "d"), (hours, "h"), (mins, "min")) if value]
    return " ".join(parts)
