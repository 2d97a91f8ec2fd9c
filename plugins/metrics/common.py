"""Pieces several metrics share: uniform noise."""

from __future__ import annotations

import torch
from torch import Tensor


def uniform_perturbation(x: Tensor, eps: float, generator: torch.Generator, *, clamp: bool = True) -> Tensor:
    """δ with δ_i ~ U[−eps, eps] per pixel, shape of ``x``; with ``clamp``, δ is replaced by
    clamp(x + δ, 0, 1) − x so that x + δ is a valid image (the δ actually applied)."""
    delta = (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * eps
    return (x + delta).clamp(0.0, 1.0) - x if clamp else delta
