"""torchrun support: process-group setup from the launcher's environment, and a clean shutdown."""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job; a plain single-process run is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None      # "nccl", "gloo", or None without a process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the torchrun job (NCCL on CUDA, Gloo on CPU) or describe a single process.

    `device` is "auto" (CUDA when available), "cpu" or "cuda"; under torchrun each process takes GPU LOCAL_RANK.
    """
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise ValueError(f"train.device is {device!r} but CUDA is not available on this machine")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ValueError(f"train.device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        chosen = torch.device(device if device.startswith("cuda") else "cuda") if use_cuda else torch.device("cpu")
        return DistributedContext(device=chosen)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if use_cuda:
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
        backend = "nccl"
        dist.init_process_group(backend, device_id=chosen)
    else:
        chosen, backend = torch.device("cpu"), "gloo"
        dist.init_process_group(backend)
    return DistributedContext(rank, world_size, local_rank, chosen, backend)


def shutdown_distributed(context: DistributedContext) -> None:
    """Tear down the process group. The caller must drop its DDP model and optimiser first (and this collects
    garbage): destroying the group while DDP's reducer is still alive makes some launches abort at exit."""
    gc.collect()
    if context.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    if context.distributed:
        dist.barrier()
