"""Naive references for the methods' inner maximizations: the official loops written out directly."""

from __future__ import annotations

import torch


def normal_start(x: torch.Tensor, seed: int) -> torch.Tensor:
    """x + 0.001·N(0, 1), not clamped, drawn as the plugins draw it from a seeded generator."""
    return x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


def linf_step(x_adv: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, eps: float, step: float) -> torch.Tensor:
    """One signed-gradient step, projected onto the Linf ball around x and onto [0, 1]."""
    x_adv = x_adv.detach() + step * grad.sign()
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
