"""Batch sizes chosen from free GPU memory, for attacks that batch internally (AutoAttack).

The memory of an attack batch is dominated by one forward and one input-gradient backward of
the model; :func:`bytes_per_example` measures that on two small probe batches (the difference
cancels what does not grow with the batch: weights, workspaces), and :func:`batch_size_for_memory`
turns free memory into a batch size with a safety margin.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advdistill.torch_utils import no_param_grad

log = logging.getLogger(__name__)

#: share of the free memory an automatically sized batch may use
MEMORY_FRACTION = 0.6
#: the measured forward + input-gradient memory is multiplied by this (attack buffers, FAB's
#: extra gradients, allocator fragmentation)
SAFETY_FACTOR = 2.0
MAX_BATCH = 8192


def batch_size_for_memory(
    free_bytes: float,
    bytes_per_example: float,
    *,
    fraction: float = MEMORY_FRACTION,
    safety: float = SAFETY_FACTOR,
    minimum: int = 1,
    maximum: int = MAX_BATCH,
    multiple: int = 32,
) -> int:
    """The largest batch whose estimated memory (``safety · bytes_per_example`` each) fits in
    ``fraction · free_bytes``; rounded down to a multiple of ``multiple`` when at least that big,
    and kept within ``[minimum, maximum]``."""
    if bytes_per_example <= 0:
        return maximum
    fits = int(fraction * free_bytes // (safety * bytes_per_example))
    if fits >= multiple:
        fits -= fits % multiple
    return max(minimum, min(maximum, fits))


def bytes_per_example(model: nn.Module, x: Tensor, probe: tuple[int, int] = (4, 16)) -> float:
    """CUDA memory of one example in a forward + input-gradient pass of ``model`` (peak, in bytes).

    Measured on two probe batches cut from ``x`` (repeated when ``x`` is shorter); the model is
    used as it is (eval mode expected) and its parameters get no gradient.
    """
    device = x.device
    small, large = probe
    peaks = []
    with no_param_grad(model):
        for n in (small, large):
            batch = x[:1].expand(n, *x.shape[1:]).clone() if x.shape[0] < n else x[:n].clone()
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            start = torch.cuda.memory_allocated(device)
            batch.requires_grad_(True)
            logits = model(batch).float()
            (grad,) = torch.autograd.grad(F.log_softmax(logits, dim=1)[:, 0].sum(), [batch])
            del logits, grad, batch
            torch.cuda.synchronize(device)
            peaks.append(torch.cuda.max_memory_allocated(device) - start)
    slope = (peaks[1] - peaks[0]) / (large - small)
    return slope if slope > 0 else peaks[1] / large


def free_memory(device: torch.device) -> int:
    """Bytes this process can still allocate on ``device``: free on the GPU plus our cached blocks."""
    free, _total = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def auto_batch_size(model: nn.Module, x: Tensor, *, default: int, n_examples: int | None = None) -> int:
    """A batch size for attacking ``model`` on images like ``x``: from free memory on CUDA, else ``default``.

    Never more than ``n_examples`` (the images to attack), when given.
    """
    if x.device.type != "cuda":
        return default
    per_example = bytes_per_example(model, x)
    size = batch_size_for_memory(free_memory(x.device), per_example)
    if n_examples is not None:
        size = max(1, min(size, n_examples))
    log.info("automatic batch size %d (%.1f MiB per example, %.1f GiB free)", size, per_example / 2**20,
             free_memory(x.device) / 2**30)
    return size
