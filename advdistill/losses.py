"""Distillation losses shared by several methods; each written once, here.

Notation as in docs/methods.md: ``KL(p‖q) = Σ p (log p − log q)``; ``"batchmean"`` sums
over classes and batch and divides by B; ``"mean"`` divides the sum by B·C (what
PyTorch's ``KLDivLoss()`` default computes); ``"sum"`` is the plain sum; ``"none"``
returns the per-example sums (B,).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
    target_eps: float = 0.0,
    input_eps: float = 0.0,
) -> Tensor:
    """``KL(softmax(target/τ) ‖ softmax(input/τ))`` of (B, C) logits, reduced; scalar (or (B,) for "none").

    I.e. ``KLDivLoss(log_softmax(input/τ), softmax(target/τ))``.

    Gradients flow into both arguments unless the caller detaches ``target_logits``.
    Not multiplied by τ² (callers that follow Hinton scaling do it themselves).

    ``target_eps`` / ``input_eps`` reproduce official codes that take logarithms of
    probabilities plus a constant: the elementwise term becomes
    ``p·(log(p + target_eps) − log(q + input_eps))`` (RSLAD: ``target_eps = 1e-5``;
    MART: ``input_eps = 1e-12``). With both 0 (default) the exact, stable log-softmax form is used.
    """
    if temperature != 1.0:  # x / 1.0 is x: skip two kernels (and a scalar copy each) per call
        target_logits, input_logits = target_logits / temperature, input_logits / temperature
    if target_eps == 0.0 and input_eps == 0.0:
        log_q = F.log_softmax(input_logits, dim=1)
        log_p = F.log_softmax(target_logits, dim=1)
        per_element = F.kl_div(log_q, log_p, reduction="none", log_target=True)
        return reduce(per_element, reduction)
    p = F.softmax(target_logits, dim=1)
    log_p = torch.log(p + target_eps) if target_eps else F.log_softmax(target_logits, dim=1)
    if input_eps:
        log_q = torch.log(F.softmax(input_logits, dim=1) + input_eps)
    else:
        log_q = F.log_softmax(input_logits, dim=1)
    return reduce(p * (log_p - log_q), reduction)


def weighted_kl_div(
    target_logits: Tensor,
    input_logits: Tensor,
    weights: Tensor,
    *,
    temperature: float = 1.0,
    input_eps: float = 0.0,
) -> Tensor:
    """``(1/B)·Σ_i w_i·KL(softmax(target_i/τ) ‖ softmax(input_i/τ))`` for per-example weights ``w`` (B,).

    The form of MART's robust term and IAD's introspection terms. ``weights`` are used as
    given: detach them where the method treats them as constants.
    """
    per_example = kl_div(
        target_logits, input_logits, temperature=temperature, reduction="none", input_eps=input_eps
    )
    return (per_example * weights).sum() / per_example.shape[0]


def accuracy_count(logits: Tensor, y: Tensor) -> Tensor:
    """Number of correct predictions, as a device tensor (no host sync)."""
    return (logits.argmax(dim=1) == y).sum()


def input_gradient(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """∇_x CE(f(x_i), y_i) for every example, shape of ``x``, from one backward of the summed loss
    (each example's loss depends only on its own input when the model is in eval mode)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x).float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, [x])
    return grad
