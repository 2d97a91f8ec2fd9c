"""Multi-process training with ``torchrun`` (DESIGN §8): DDP, NCCL on GPUs, gloo on CPUs.

Every process trains on its shard of each batch; gradients are averaged by DDP; only rank 0
writes files and runs callbacks and evaluation. Single-process runs use the same code with
``world_size == 1`` and never touch ``torch.distributed``.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from attrs import define


@define(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_spec: str) -> tuple[DistInfo, str]:
    """Join the process group that ``torchrun`` describes (if any); returns the info and device spec.

    Under torchrun with CUDA, each process takes ``cuda:LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo(), device_spec
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_spec.startswith("cuda") or (device_spec == "auto" and torch.cuda.is_available())
    if use_cuda:
        device_spec = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    initialized_here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        initialized_here = True
    return DistInfo(rank, local_rank, world_size, initialized_here), device_spec


def all_reduce(value: torch.Tensor, info: DistInfo, op: str = "mean") -> torch.Tensor:
    """Reduce a tensor over processes (``"mean"``, ``"sum"`` or ``"max"``); identity when single."""
    if not info.enabled:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return value / info.world_size if op == "mean" else value


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()
