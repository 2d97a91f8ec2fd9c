"""Naive references for the objective formula tests: one example (a 1-D vector) at a time.

Written with explicit sums over classes, so they share no code with ``advdistill.losses``.
"""

from __future__ import annotations

import pytest
import torch


def softmax1(v: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    e = torch.exp(v / tau - (v / tau).max())
    return e / e.sum()


def kl1(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) = Σ_k p_k (log p_k − log q_k) for probability vectors."""
    return sum(p[k] * (torch.log(p[k]) - torch.log(q[k])) for k in range(p.shape[0]))


def ce1(logits: torch.Tensor, label: int) -> torch.Tensor:
    return -torch.log(softmax1(logits)[label])


def assert_same_value_and_gradient(ours: torch.Tensor, reference: torch.Tensor, student, rtol=1e-5):
    """Equal values and equal gradients with respect to every student parameter."""
    assert ours.item() == pytest.approx(reference.item(), rel=rtol, abs=1e-7)
    params = [p for p in student.parameters() if p.requires_grad]
    g_ours = torch.autograd.grad(ours, params)
    g_ref = torch.autograd.grad(reference, params)
    for a, b in zip(g_ours, g_ref):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), (a - b).abs().max()
