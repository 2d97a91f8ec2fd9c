"""Distillation losses shared by several methods; each written once, here.

Notation as in ``METHODS.md``: ``KL(p‖q) = Σ p (log p − log q)``; ``"batchmean"`` sums
over classes and batch and divides by B; ``"mean"`` divides the sum by B·C (what
PyTorch's ``KLDivLoss()`` default computes); ``"sum"`` is the plain sum; ``"none"``
returns the per-example sums (B,).
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

Reduction = Literal["batchmean", "mean", "sum", "none"]


def reduce(per_element: Tensor, reduction: Reduction) -> Tensor:
    """Reduce a (B, C) tensor of elementwise terms."""
    if reduction == "batchmean":
        return per_element.sum() / per_element.shape[0]
    if reduction == "mean":
        return per_element.mean()
    if reduction == "sum":
        return per_element.sum()
    if reduction == "none":
        return per_element.sum(dim=1)
    raise ValueError(f"unknown reduction {reduction!r}")


def kl_div(
    target_logits: Tensor,
    input_logits: Tensor,
    *,
    temperature: float = 1.0,
    reduction: Reduction = "batchmean",
) -> Tensor:
    """``KL(softmax(target/τ) ‖ softmax(input/τ))``, i.e. ``KLDivLoss(log_softmax(input/τ), softmax(target/τ))``.

    Gradients flow into both arguments unless the caller detaches ``target_logits``.
    Not multiplied by τ² (callers that follow Hinton scaling do it themselves).
    """
    log_q = F.log_softmax(input_logits / temperature, dim=1)
    log_p = F.log_softmax(target_logits / temperature, dim=1)
    per_element = F.kl_div(log_q, log_p, reduction="none", log_target=True)
    return reduce(per_element, reduction)


def soft_cross_entropy(logits: Tensor, target_probs: Tensor, reduction: Reduction = "batchmean") -> Tensor:
    """``−Σ target · log_softmax(logits)``."""
    return reduce(-target_probs * F.log_softmax(logits, dim=1), reduction)


def accuracy_count(logits: Tensor, y: Tensor) -> Tensor:
    """Number of correct predictions, as a device tensor (no host sync)."""
    return (logits.argmax(dim=1) == y).sum()

