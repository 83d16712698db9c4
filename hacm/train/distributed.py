"""Data-parallel set-up decided by torchrun's variables only.

Inside every Snakemake SLURM job SLURM_PROCID is set; it says nothing about whether this process is
one of several training processes, so it is ignored. torchrun sets LOCAL_RANK and WORLD_SIZE.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hacm.train.environment import use_cuda


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def torchrun_world() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when launched by torchrun with more than one process, else None."""
    if "LOCAL_RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    world = int(os.environ["WORLD_SIZE"])
    if world <= 1:
        return None
    return int(os.environ.get("RANK", os.environ["LOCAL_RANK"])), world, int(os.environ["LOCAL_RANK"])


def setup_distributed(prefer_cuda: bool = True) -> Distributed:
    """Join the process group when torchrun started several processes (NCCL on GPUs, gloo on CPUs).
    DeviceError when the job was given GPUs that PyTorch cannot use (hacm.train.environment)."""
    cuda = prefer_cuda and use_cuda()
    world = torchrun_world()
    if world is None:
        return Distributed(device=torch.device("cuda", 0) if cuda else torch.device("cpu"))
    rank, world_size, local_rank = world
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    return Distributed(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def teardown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def requested_device(text: str) -> torch.device:
    """A --device argument as a device this PyTorch can use (cpu or cuda); ValueError with one line otherwise."""
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"--device {text!r} is not a device (cpu, cuda, cuda:1, ...)") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {text}: only cpu and cuda devices are supported")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {text}: this PyTorch sees no CUDA device")
    return device
