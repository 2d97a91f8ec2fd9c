"""Fixtures for the methods' formula tests: tiny fixed models, tensors and step contexts."""

from __future__ import annotations

import math

import pytest
import torch

from advdistill.context import StepContext
from advdistill.testing import make_step_context

B, C = 5, 4


class Affine(torch.nn.Module):
    """A per-example model (no batch coupling), so per-example loops equal batched calls."""

    def __init__(self, seed: int, scale: float = 2.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(C, 12, generator=g) * scale / math.sqrt(12))
        self.bias = torch.nn.Parameter(torch.randn(C, generator=g) * 0.1)

    def forward(self, x):
        return x.flatten(1) @ self.weight.T + self.bias


@pytest.fixture
def edge_batch(batch):
    """The shared batch with some pixels exactly at 0 and 1, where clamping the attack's start matters."""
    x, y = batch
    x = x.clone()
    x[:, :, :2] = 0.0
    x[:, :, -2:] = 1.0
    return x, y


@pytest.fixture
def models():
    return Affine(0), Affine(1, scale=3.0).requires_grad_(False).eval()


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(7)
    x = torch.rand(B, 1, 3, 4, generator=g)
    x_adv = (x + (torch.rand(x.shape, generator=g) * 2 - 1) * 0.3).clamp(0, 1)
    y = torch.tensor([0, 1, 2, 3, 1])
    return x, x_adv, y


@pytest.fixture
def make_context(models, data):
    """``make_context(epoch=1, epochs=10)``: a fresh StepContext over the fixed models and batch."""
    student, teacher = models
    x, x_adv, y = data

    def make(epoch: int = 1, epochs: int = 10, teacher_model=teacher) -> StepContext:
        return make_step_context(student, teacher_model, x, y, x_adv, epoch=epoch, epochs=epochs)

    return make
