"""A real single-node SLURM cluster for tests, and a Snakemake profile that submits to it.

``local_slurm(state_dir)`` runs ``tests/slurm/start_cluster.sh`` (munge, MariaDB + slurmdbd,
slurmctld, slurmd as plain root daemons, a placeholder GPU) and always runs
``tests/slurm/stop_cluster.sh`` afterwards.  ``write_test_profile(dir, base)`` writes a profile
for snakemake-executor-plugin-slurm (written against 2.8.0) that submits to that cluster,
optionally derived from one of the repository's own profiles (``slurm/``, ``slurm/no-conda/``).
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

SCRIPTS = Path(__file__).resolve().parent / "slurm"
START = SCRIPTS / "start_cluster.sh"
STOP = SCRIPTS / "stop_cluster.sh"
PARTITION = "local"  # the cluster's only partition (start_cluster.sh's PARTITION)
FAKE_GPUS = 1  # placeholder GPUs declared on the node
# slurmdbd's default association: account "root" for user root (the harness runs as root).  An
# explicit account spares the plugin its account guessing (2.8.0 ignores slurm-no-account).
ACCOUNT = "root"
RUNTIME_CAP_MIN = 60  # per-job runtime ceiling in the test profile (minutes)


def require_slurm_prerequisites() -> None:
    """Skip where a local cluster cannot be started and nobody asked for it (not root, CI unset); fail
    when the executor plugin is missing. In CI a missing prerequisite is always a failure."""
    import importlib.util

    import pytest

    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("the local SLURM cluster needs root (apt-get install, daemons as root); "
                    "set CI=1 to make this a failure instead")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail("snakemake-executor-plugin-slurm is not installed: pip install -e '.[slurm]'")


class SlurmStartError(RuntimeError):
    """start_cluster.sh failed; the message is its one-line reason."""


@dataclass(frozen=True)
class SacctJob:
    job_id: str  # "12" for a job, "12.0" for its first step
    name: str  # the executor plugin names every job after the run ("hacm_<uuid>" with slurm/'s prefix) ...
    state: str  # COMPLETED, FAILED, RUNNING, ... ("CANCELLED by 0" -> CANCELLED)
    alloc_tres: str  # e.g. "billing=1,cpu=1,gres/gpu=1,mem=1000M,node=1"
    comment: str  # ... and puts "rule_<rule>[_wildcards_<...>]" into the comment
    time_limit_min: int | None  # the job's time limit (sbatch -t); None for steps and UNLIMITED
    start: str  # ISO times, "Unknown" before the job starts or ends
    end: str

    @property
    def rule(self) -> str:
        """The rule, or for a group job "<group id>_<its rules>" (the plugin comments a group that way)."""
        m = re.match(r"rule_(.+?)(?:_wildcards_.*)?$", self.comment)
        return m.group(1) if m else self.name


def _minutes(limit: str) -> int | None:
    """sacct's Timelimit ("[D-]HH:MM:SS", "MM:SS", "UNLIMITED", "") in minutes."""
    m = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)", limit.strip())
    if not m:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return days * 1440 + hours * 60 + minutes + (1 if seconds else 0)


@dataclass
class LocalSlurm:
    state_dir: Path
    env: dict[str, str]  # pass to subprocesses: SLURM_CONF, no inherited SLURM_* variables
    started: str  # sacct -S value: the cluster's start time (local time)
    start_seconds: float  # how long start_cluster.sh took

    def sacct_jobs(self, *, steps: bool = False) -> list[SacctJob]:
        """Every job (all users) sacct lists since the cluster started; with *steps*, their steps too."""
        out = subprocess.run(
            ["sacct", "-n", "-P", "-a", "-S", self.started, *([] if steps else ["-X"]),
             "--format=JobID,JobName,State,AllocTRES,Timelimit,Start,End,Comment"],
            env=self.env, capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        jobs = []
        for line in out.splitlines():
            if line.strip():
                job_id, name, state, tres, limit, start, end, comment = (line.split("|", 7) + [""] * 8)[:8]
                jobs.append(SacctJob(job_id, name, state.split()[0] if state else "", tres, comment,
                                     _minutes(limit), start, end))
        return jobs


def _cluster_env(state_dir: Path) -> dict[str, str]:
    # a test run from inside a SLURM job must not leak that job's variables into sbatch
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k != "SNAKEMAKE_SLURM_PARTITIONS"}
    env["SLURM_CONF"] = str(state_dir / "etc" / "slurm.conf")
    return env


@contextmanager
def local_slurm(state_dir: Path, *, timeout: float = 900) -> Iterator[LocalSlurm]:
    """Start the cluster with its state in *state_dir*; yield a LocalSlurm; always stop it.

    Raises SlurmStartError with start_cluster.sh's reason when a daemon cannot start.
    """
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    env = _cluster_env(state_dir)
    script_env = dict(env, PARTITION=PARTITION, FAKE_GPUS=str(FAKE_GPUS))
    log = state_dir / "start_cluster.log"
    stop_log = state_dir / "stop_cluster.log"
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 1))
    t0 = time.monotonic()
    try:
        # output to a file, not a pipe: nothing may hold a pipe open after the daemons fork
        with open(log, "w") as fh:
            try:
                rc = subprocess.run(["bash", str(START), str(state_dir)], check=False, stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=script_env,
                                    timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                raise SlurmStartError(f"start_cluster.sh did not finish within {timeout:.0f}s; see {log}") from None
        if rc != 0:
            lines = log.read_text(errors="replace").splitlines()
            reason = next((ln for ln in reversed(lines) if "FAILED:" in ln), lines[-1] if lines else "no output")
            raise SlurmStartError(f"{reason} (exit {rc}; full output in {log})")
        yield LocalSlurm(state_dir, env, started, time.monotonic() - t0)
    finally:
        with open(stop_log, "w") as fh:
            stop = subprocess.run(["bash", str(STOP), str(state_dir)], check=False, stdout=fh,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=script_env, timeout=120)
        if stop.returncode != 0:
            msg = f"stop_cluster.sh failed (exit {stop.returncode}): {stop_log.read_text(errors='replace')}"
            in_flight = sys.exc_info()[1]
            if in_flight is None:
                raise RuntimeError(msg)
            if hasattr(in_flight, "add_note"):  # Python >= 3.11; never hide the error that ended the block
                in_flight.add_note(msg)


# ----------------------------------------------------------------------------------- profile

# plugin settings that name things the local cluster does not have
_SITE_KEYS = ("slurm-qos", "slurm-reservation", "slurm-partition-config", "slurm-exclude-failed-nodes",
              "slurm-no-account", "slurm-status-command")
# resources that name site-specific accounts, partitions, QoS, clusters, node features, GPU models
_SITE_RESOURCES = ("slurm_account", "slurm_partition", "qos", "constraint", "cluster", "clusters",
                   "slurm_cluster", "gpu_model", "gpu_manufacturer")


def _node_limits() -> tuple[int, int]:
    """(CPUs, memory MB per CPU) of this machine, which is the cluster's only node."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    mem_mb = 2048 * cpus
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_mb = int(line.split()[1]) // 1024
    except OSError:
        pass
    return cpus, max(256, mem_mb // cpus)


def _as_dict(value, two_level: bool) -> dict:
    """A profile's default-resources / set-resources, mapping or list of 'k=v' strings, as a dict."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return copy.deepcopy(value) if not two_level else {k: dict(v or {}) for k, v in value.items()}
    result: dict = {}
    for item in value:
        key, _, raw = str(item).partition("=")
        parsed = yaml.safe_load(raw) if raw.strip() else raw
        if two_level:
            rule, _, res = key.partition(":")
            result.setdefault(rule.strip(), {})[res.strip()] = parsed
        else:
            result[key.strip()] = parsed
    return result


_UNIT_MB = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024**2}
_UNIT_MIN = {"s": 1 / 60, "m": 1, "h": 60, "d": 1440, "w": 10080}


def _mem_mb(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = re.fullmatch(r"\s*([\d.]+)\s*([kmgt]?)i?b?\s*", str(value), re.IGNORECASE)
    return float(m.group(1)) * _UNIT_MB[m.group(2).lower() or "m"] if m else None


def _runtime_min(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    parts = re.findall(r"([\d.]+)\s*([smhdw])", str(value).lower())
    if parts and re.fullmatch(r"(\s*[\d.]+\s*[smhdw]\w*)+\s*", str(value).lower()):
        return sum(float(n) * _UNIT_MIN[u] for n, u in parts)
    return None


def _fit(res: dict, cpus: int, mem_per_cpu: int) -> dict:
    """Resources of one rule (or the defaults) made to fit the single local node."""
    res = {k: v for k, v in res.items() if k not in _SITE_RESOURCES}
    n_cpu = res.get("cpus_per_task")
    if isinstance(n_cpu, int) and n_cpu > cpus:
        res["cpus_per_task"] = cpus
    job_cpus = min(n_cpu, cpus) if isinstance(n_cpu, int) and n_cpu > 0 else 1
    for key in ("mem", "mem_mb", "mem_mib"):  # memory is not enforced here (no cgroups): a scheduling cap
        if key in res:
            mb = _mem_mb(res.pop(key))
            res["mem_mb"] = int(min(mb, mem_per_cpu * job_cpus)) if mb else mem_per_cpu * job_cpus
    if "mem_mb_per_cpu" in res:
        mb = _mem_mb(res["mem_mb_per_cpu"])
        res["mem_mb_per_cpu"] = int(min(mb, mem_per_cpu)) if mb else mem_per_cpu
    if "runtime" in res:
        minutes = _runtime_min(res["runtime"])
        res["runtime"] = int(min(minutes, RUNTIME_CAP_MIN)) if minutes else RUNTIME_CAP_MIN
    for key in ("gpu", "gpus"):  # the node has FAKE_GPUS placeholder GPUs
        if isinstance(res.get(key), int) and res[key] > FAKE_GPUS:
            res[key] = FAKE_GPUS
    if isinstance(res.get("gres"), str):  # e.g. gpu:a100:2 -> gpu:1 (the fake GPU has no type)
        m = re.fullmatch(r"gpu(?::[^:,]+)?(?::(\d+))?", res["gres"].strip())
        if m:
            res["gres"] = f"gpu:{min(int(m.group(1) or 1), FAKE_GPUS)}"
        else:
            del res["gres"]  # any other generic resource does not exist on the node
    return res


def write_test_profile(directory: Path, base_profile: Path | None = None) -> Path:
    """Write ``directory/config.yaml``, a Snakemake profile for the local_slurm cluster.

    Without *base_profile*: a minimal slurm profile.  With it (a profile's config.yaml or its
    directory, e.g. the repository's ``slurm/no-conda``): that profile, overriding only what the
    local cluster needs -- partition and account, status-check timing, and CPU / memory / runtime /
    GPU requests capped to the single node -- so that per-rule ``gpu: 1`` requests still go through
    ``sbatch --gpus=1`` to the placeholder GPU.  Its software deployment (conda or none), submission
    limits and groups are kept as they are.  Returns *directory*.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cpus, mem_per_cpu = _node_limits()
    cfg: dict = {}
    if base_profile is not None:
        base_file = Path(base_profile)
        if base_file.is_dir():
            base_file = base_file / "config.yaml"
        cfg = yaml.safe_load(base_file.read_text()) or {}
        # snakemake resolves a string value against the profile's own directory when such a
        # file exists there; this profile lives elsewhere, so make those paths absolute
        for key, value in cfg.items():
            if isinstance(value, str) and value and (base_file.parent / value).exists():
                cfg[key] = str((base_file.parent / value).resolve())
    for key in _SITE_KEYS:
        cfg.pop(key, None)

    defaults = _fit(_as_dict(cfg.get("default-resources"), two_level=False), cpus, mem_per_cpu)
    defaults["slurm_partition"] = PARTITION
    defaults["slurm_account"] = ACCOUNT
    defaults.setdefault("runtime", 30)
    if "mem_mb_per_cpu" not in defaults:
        defaults.setdefault("mem_mb", min(1000, mem_per_cpu))
    per_rule = {rule: _fit(res, cpus, mem_per_cpu)
                for rule, res in _as_dict(cfg.get("set-resources"), two_level=True).items()}

    jobs = cfg.get("jobs")
    cfg.update({
        "executor": "slurm",
        "jobs": min(jobs, 4) if isinstance(jobs, int) and jobs > 0 else 4,
        # slurmdbd runs, so sacct answers (the plugin's default; stated for clarity)
        "slurm-status-command": "sacct",
        # first status check 2 s after a submission (default 40 s), and the interval the plugin
        # returns to whenever a job finished; while none finishes it backs off by +10 s per
        # round (hard-coded in 2.8.0; core's seconds-between-status-checks is overridden by it)
        "slurm-init-seconds-before-status-checks": 2,
        # rules' threads -> --cpus-per-task; more than the node has would never schedule
        "max-threads": cpus,
        "default-resources": defaults,
    })
    if per_rule:
        cfg["set-resources"] = per_rule
    else:
        cfg.pop("set-resources", None)
    path = directory / "config.yaml"
    path.write_text("# written by tests/slurm_cluster.py:write_test_profile for the local test cluster\n"
                    + yaml.safe_dump(cfg, sort_keys=False))
    return directory
