"""Multi-process training and evaluation with ``torchrun`` (DESIGN §8): DDP, NCCL on GPUs, gloo on CPUs.

``train.batch_size`` is the global batch: every process trains on its share of each batch
and DDP averages the gradients. The final evaluation (and ``advdistill eval`` under torchrun)
is sharded: each process evaluates its part of the test set and the parts are merged through
the per-image records (:mod:`advdistill.evaluation.sharding`). Only process 0 writes files,
runs callbacks and prints. Single-process runs use the same code with ``world_size == 1`` and
never touch ``torch.distributed``.
"""

from __future__ import annotations

import datetime
import os
import pickle
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from attrs import define

from advdistill.errors import AdvDistillError, DistributedError, RecipeError

T = TypeVar("T")

#: minutes a process waits for the others in one collective operation (``train.dist_timeout_min``)
DEFAULT_TIMEOUT_MIN = 60.0


@define(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    initialized_here: bool = False
    #: the process group's timeout in minutes (None: torch's default)
    timeout_min: float | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_rank() -> int:
    """This process's rank as ``torchrun`` set it (0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0"))


def setup(device_spec: str, timeout_min: float | None = None) -> tuple[DistInfo, str]:
    """Join the process group that ``torchrun`` describes (if any); returns the info and device spec.

    Under torchrun with CUDA, each process takes ``cuda:LOCAL_RANK``. ``timeout_min``: how long a
    collective operation waits for every process (``train.dist_timeout_min``); a group that is
    already initialized keeps its own.
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
        timeout = datetime.timedelta(minutes=timeout_min) if timeout_min is not None else None
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=timeout)
        initialized_here = True
    return DistInfo(rank, local_rank, world_size, initialized_here, timeout_min), device_spec


def per_process_batch(batch_size: int, batch_size_per_process: int | None, world_size: int) -> int:
    """Images per step in each process: ``batch_size_per_process``, else the global ``batch_size``'s share.

    :raises RecipeError: the global batch does not divide over the processes.
    """
    if batch_size_per_process is not None:
        return batch_size_per_process
    if batch_size % world_size:
        lower = batch_size - batch_size % world_size
        options = " or ".join(str(b) for b in (lower, lower + world_size) if b > 0)
        raise RecipeError(
            f"train.batch_size = {batch_size} (the global batch) does not divide over {world_size} processes: "
            f"use a multiple of {world_size} (e.g. {options}), or set train.batch_size_per_process "
            f"(then each process takes that many and a step sees {world_size} times as many)."
        )
    return batch_size // world_size


def _waited_too_long(info: DistInfo, what: str, exc: Exception) -> Exception:
    """A timeout of a collective operation becomes a message naming the setting; other errors stay."""
    text = str(exc)
    if "timed out" not in text.lower() and "timeout" not in text.lower():
        return exc
    limit = f"{info.timeout_min:g} minutes" if info.timeout_min is not None else "torch's default"
    return DistributedError(
        f"process {info.rank} of {info.world_size} waited longer than train.dist_timeout_min ({limit}) for the "
        f"others {what}. A process that is slower on purpose (a long evaluation in process 0) needs a larger "
        f"train.dist_timeout_min; otherwise another process died or hangs (see its output). ({text.strip()})"
    )


def _collective(info: DistInfo, what: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except (RuntimeError, dist.DistError) as exc:  # DistBackendError and gloo's timeouts are RuntimeErrors
        error = _waited_too_long(info, what, exc)
        if error is exc:
            raise
        raise error from exc


def all_reduce(value: torch.Tensor, info: DistInfo, op: str = "mean") -> torch.Tensor:
    """Reduce a tensor over processes (``"mean"``, ``"sum"`` or ``"max"``); identity when single."""
    if not info.enabled:
        return value
    value = value.clone()
    reduce_op = dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM
    _collective(info, "in a training step", lambda: dist.all_reduce(value, op=reduce_op))
    return value / info.world_size if op == "mean" else value


def barrier(info: DistInfo, what: str = "at the end of an epoch") -> None:
    if info.enabled:
        _collective(info, what, dist.barrier)


def all_gather_object(obj: Any, info: DistInfo, what: str = "to merge results") -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order; ``[obj]`` when single."""
    if not info.enabled:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    _collective(info, what, lambda: dist.all_gather_object(gathered, obj))
    return gathered


def from_main(info: DistInfo, compute: Callable[[], T], what: str = "for process 0") -> T:
    """``compute()`` in process 0, its result handed to every process; its error raised in every process.

    For what only process 0 may do (lock the output directory, read a file that only its node
    has): the others wait instead of failing later, or hanging, on their own.
    """
    if not info.enabled:
        return compute()
    payload: list[Any] = [None]
    if info.is_main:
        try:
            payload[0] = (True, compute())
        except Exception as exc:
            payload[0] = (False, _picklable(exc))
            _collective(info, what, lambda: dist.broadcast_object_list(payload, src=0))
            raise
    _collective(info, what, lambda: dist.broadcast_object_list(payload, src=0))
    ok, value = payload[0]
    if not ok:
        raise value
    return value


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return AdvDistillError(f"process 0 failed: {type(exc).__name__}: {exc}")
    return exc


def teardown(info: DistInfo) -> None:
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()
