"""Where a run computes: the device it may use, and the record of host, GPU and versions it leaves.

A SLURM job that was given GPUs but whose PyTorch sees no CUDA device (a CPU-only build, a driver that
does not match) would otherwise train on the CPU until its time limit: that is refused at once, unless
HACM_DEVICE=cpu asks for the CPU on purpose.
"""

from __future__ import annotations

import os
import platform
import socket

import torch

DEVICE_SWITCH = "HACM_DEVICE"  # auto (default): CUDA when PyTorch sees it; cpu: the CPU even on a GPU node
# What SLURM sets in a job (and in each of its steps) that was allocated GPUs: their indices, or their count
SLURM_GPU_VARIABLES = ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "SLURM_GPUS_ON_NODE")


class DeviceError(RuntimeError):
    """The run cannot have the device it was meant to use; the message says why and what to do."""


def device_choice() -> str:
    choice = os.environ.get(DEVICE_SWITCH, "auto").strip().lower() or "auto"
    if choice not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"{DEVICE_SWITCH}={choice!r}: must be auto, cpu or cuda")
    return choice


def slurm_gpus() -> str | None:
    """The GPUs SLURM allocated to this job ('0,1' or a count), or None outside a GPU job."""
    for name in SLURM_GPU_VARIABLES:
        value = os.environ.get(name, "").strip()
        none = ("", "(null)", "N/A") + (("0",) if name == "SLURM_GPUS_ON_NODE" else ())  # a count, not indices
        if value not in none:
            return f"{name}={value}"
    return None


def why_no_cuda() -> str:
    if torch.version.cuda is None:
        return f"PyTorch {torch.__version__} is a CPU-only build"
    try:
        torch.cuda.init()
    except Exception as error:  # the driver's own words (no driver, too old, no device visible)
        return f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) cannot use CUDA: {str(error).splitlines()[0]}"
    return f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device"


def use_cuda() -> bool:
    """Whether the run computes on CUDA; DeviceError when a GPU was allocated or asked for and none is usable."""
    choice = device_choice()
    if choice == "cpu":
        return False
    if torch.cuda.is_available():
        return True
    allocated = slurm_gpus()
    if choice == "cuda" or allocated:
        given = f"this SLURM job was given GPUs ({allocated})" if allocated else f"{DEVICE_SWITCH}=cuda"
        raise DeviceError(f"{given} but {why_no_cuda()}; install a CUDA build of PyTorch on the nodes "
                          f"(see docs/cluster.md), or set {DEVICE_SWITCH}=cpu to use the CPU on purpose")
    return False


def describe(device: torch.device, *, world_size: int = 1) -> dict:
    """What a run records of where it ran (metrics, checkpoints): host, device, GPU, versions, SLURM job."""
    record = {"host": socket.gethostname(), "device": str(device), "world_size": world_size,
              "torch": str(torch.__version__), "cuda": torch.version.cuda, "python": platform.python_version(),
              "cpu_threads": torch.get_num_threads(), "slurm_job_id": os.environ.get("SLURM_JOB_ID")}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        record.update(gpu=properties.name, gpu_memory_gib=round(properties.total_memory / 2**30, 1),
                      cudnn=torch.backends.cudnn.version())
    return record


def memory_line(device: torch.device) -> str:
    """' GPU memory 12.3 / 79.6 GiB (peak)' on CUDA, '' elsewhere."""
    if device.type != "cuda":
        return ""
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    total = torch.cuda.get_device_properties(device).total_memory / 2**30
    return f", GPU memory {peak:.1f} / {total:.1f} GiB (peak)"


def device_title(record: dict) -> str:
    """'cuda:0 (NVIDIA H100 80GB HBM3)' or 'cpu (8 threads)' from a describe() record."""
    if record.get("gpu"):
        return f"{record['device']} ({record['gpu']})"
    return f"{record['device']} ({record['cpu_threads']} threads)"
