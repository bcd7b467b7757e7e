"""torch.distributed for benchmarks: one process per rank under torchrun, a single process without it.

    torchrun --standalone --nproc_per_node=K -m benchmarks.sweep ...

torchrun sets RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT; without them everything runs in this process
as rank 0 of 1 and no process group is made. gloo moves the results on CPU, nccl when the work is on CUDA
(each rank then takes the GPU of its LOCAL_RANK).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher that sets WORLD_SIZE)."""
    return "WORLD_SIZE" in os.environ


@contextmanager
def process_group(device: str = "cpu") -> Iterator[tuple[int, int, torch.device]]:
    """(rank, world_size, device) for the block: torchrun's process group, else (0, 1, device) alone.

    `device` "cuda" becomes cuda:LOCAL_RANK under torchrun.
    """
    target = torch.device(device)
    if not launched():
        yield 0, 1, target
        return
    if target.type == "cuda":
        target = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(target)
    dist.init_process_group(backend="nccl" if target.type == "cuda" else "gloo")
    try:
        yield dist.get_rank(), dist.get_world_size(), target
    finally:
        dist.destroy_process_group()


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Rank r's share: items r, r + K, r + 2K, ... (K = world_size), so every rank gets a similar mix."""
    return list(items[rank::world_size])


def gather_to_first(obj: Any, rank: int, world_size: int) -> list[Any] | None:
    """Every rank's picklable `obj` in rank order on rank 0; None on the other ranks."""
    if world_size == 1:
        return [obj]
    gathered = [None] * world_size if rank == 0 else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered
