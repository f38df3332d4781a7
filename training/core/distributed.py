"""Process-group setup for ``torchrun``: one process per GPU (NCCL) or per CPU worker (gloo)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """Where this process sits: ``rank`` of ``size`` processes, on ``device``."""

    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, checkpoints, evaluates and exports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.size > 1


def _device(choice: str, local_rank: int) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but no CUDA device is available")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_world(device: str = "auto") -> World:
    """Join the process group ``torchrun`` describes in the environment, or run as a single process.

    Uses NCCL when each process has a GPU, gloo otherwise (CPU training and the CPU test of this path).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    where = _device(device, local_rank)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if where.type == "cuda" else "gloo")
    return World(rank=rank, size=size, local_rank=local_rank, device=where)


def shutdown(world: World) -> None:
    """Leave the process group (no-op for a single process), all processes together.

    The barrier keeps a process from tearing gloo down while another still talks to it (seen in CI as one rank
    aborting with "terminate called without an active exception" after training had finished).
    """
    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_sum(value: float, world: World) -> float:
    """Sum of ``value`` over all processes."""
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=world.device)
    dist.all_reduce(tensor)
    return float(tensor.item())


def broadcast_flag(flag: bool, world: World) -> bool:
    """Rank 0's ``flag`` on every process (e.g. the early-stopping decision)."""
    if not world.distributed:
        return flag
    tensor = torch.tensor([int(flag)], device=world.device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())
