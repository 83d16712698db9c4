"""What sbatch is asked for a submission: snakemake-executor-plugin-slurm 2.8.0's translation of a job's
(or a group's) resources and threads, reduced to what a node and a partition must offer.

The plugin (submit_string.py get_submit_command, utils.py set_gres_string, and the jobstep plugin's
get_cpu_setting):
  slurm_partition -> -p (a comma list: SLURM takes the first that can run the job; none: the default partition)
  slurm_account   -> -A (the first of a comma list)
  runtime         -> -t minutes
  mem_mb_per_cpu  -> --mem-per-cpu, else mem_mb -> --mem (per node)
  cpus_per_task   -> --cpus-per-task when set (> 0; below 0: no CPU option, SLURM's 1), else for a GPU job
                     cpus_per_gpu -> --cpus-per-gpu, else threads -> --cpus-per-task
  gpu, gpu_model  -> --gpus=[model:]N (N for the whole job; a model alone asks one)
  gres            -> --gres (per node)
  constraint      -> -C;  nodes -> --nodes
  tasks           -> --ntasks (a job without GPUs; default 1); a GPU job: tasks_per_gpu (or tasks) ->
                     --ntasks-per-gpu
A group job's resources are Snakemake's sums for it (per layer of jobs run side by side, the largest
layer; runtimes added), its threads the group's cores.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# which resource a fix of the CPU count changes: the one the plugin read it from
CPU_SOURCES = ("cpus_per_task", "cpus_per_gpu", "threads")


@dataclass(frozen=True)
class SbatchRequest:
    partitions: tuple[str, ...]  # () : the cluster's default partition
    account: str | None
    minutes: float | None
    nodes: int
    tasks_per_node: int
    cpus_per_node: int
    cpus_from: str  # one of CPU_SOURCES
    memory_mb_per_node: float | None  # None: no memory asked (SLURM's default per CPU)
    memory_from: str | None  # mem_mb or mem_mb_per_cpu
    gpus: int  # --gpus (the whole job), 0 for none
    gpus_per_node: int  # what one node must hold: --gpus spread over the nodes, or --gres
    gpu_model: str | None  # a GPU type, from gpu_model or gres gpu:TYPE:N
    gpu_from: str | None  # gpu or gres
    constraint: str | None

    @property
    def cpus_per_unit(self) -> int:
        """The value of the CPU resource (per task, or per GPU)."""
        units = self.gpus_per_node if self.cpus_from == "cpus_per_gpu" else self.tasks_per_node
        return self.cpus_per_node // max(1, units)


def _integer(value, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return default


def _gres_gpus(gres) -> tuple[int, str | None] | None:
    """(GPUs per node, type) of a gres string asking GPUs ("gpu", "gpu:2", "gpu:a100:2"), else None."""
    match = re.fullmatch(r"gpu(?::([A-Za-z_][\w.]*))?(?::(\d+))?", str(gres or "").strip())
    if not match:
        return None
    return int(match.group(2) or 1), match.group(1)


def sbatch_request(resources: dict, threads: int) -> SbatchRequest:
    """The request the plugin makes of SLURM for a job or group with these resources and threads."""
    partitions = tuple(name for name in re.split(r"[,\s]+", str(resources.get("slurm_partition") or "")) if name)
    accounts = [name for name in re.split(r"[,\s]+", str(resources.get("slurm_account") or "")) if name]
    runtime = resources.get("runtime")
    minutes = float(runtime) if isinstance(runtime, (int, float)) and not isinstance(runtime, bool) else None
    minutes = minutes or None  # runtime 0: no -t
    nodes = max(1, _integer(resources.get("nodes"), 1))

    gpu_model = resources.get("gpu_model") or None
    gpus = _integer(resources.get("gpu"))
    if gpu_model and not gpus:
        gpus = 1  # the plugin: --gpus=MODEL:1
    gres = _gres_gpus(resources.get("gres"))
    gpus_per_node, gpu_from = (math.ceil(gpus / nodes), "gpu") if gpus else (0, None)
    if gres is not None:
        gpus_per_node, gpu_from = max(gpus_per_node, gres[0]), gpu_from or "gres"
        gpu_model = gpu_model or gres[1]
    gpu_job = bool(resources.get("gpu")) or "gpu" in str(resources.get("gres") or "")

    tasks = _integer(resources.get("tasks"))
    if gpu_job:
        per_gpu = _integer(resources.get("tasks_per_gpu")) or tasks
        tasks = per_gpu * max(gpus, 1) if per_gpu else nodes  # SLURM's default: one task a node
    else:
        tasks = tasks or 1
    tasks_per_node = max(1, math.ceil(tasks / nodes))

    cpus_per_task = resources.get("cpus_per_task")
    cpus_per_gpu = _integer(resources.get("cpus_per_gpu"))
    if isinstance(cpus_per_task, int) and not isinstance(cpus_per_task, bool) and cpus_per_task:
        cpus_per_node, cpus_from = max(1, cpus_per_task) * tasks_per_node, "cpus_per_task"
    elif gpu_job and cpus_per_gpu > 0:
        cpus_per_node, cpus_from = cpus_per_gpu * max(1, gpus_per_node), "cpus_per_gpu"
    else:
        cpus_per_node, cpus_from = max(1, int(threads)) * tasks_per_node, "threads"

    per_cpu = resources.get("mem_mb_per_cpu")
    if isinstance(per_cpu, (int, float)) and per_cpu:
        memory, memory_from = float(per_cpu) * cpus_per_node, "mem_mb_per_cpu"
    elif isinstance(resources.get("mem_mb"), (int, float)) and resources.get("mem_mb"):
        memory, memory_from = float(resources["mem_mb"]), "mem_mb"
    else:
        memory, memory_from = None, None
    constraint = resources.get("constraint")
    return SbatchRequest(
        partitions=partitions, account=accounts[0] if accounts else None, minutes=minutes, nodes=nodes,
        tasks_per_node=tasks_per_node, cpus_per_node=cpus_per_node, cpus_from=cpus_from,
        memory_mb_per_node=memory, memory_from=memory_from, gpus=gpus, gpus_per_node=gpus_per_node,
        gpu_model=gpu_model, gpu_from=gpu_from, constraint=str(constraint) if constraint else None)
