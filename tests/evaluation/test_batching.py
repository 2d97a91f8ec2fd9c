"""Automatic attack batch sizes from free GPU memory."""

import pytest
import torch
from torch import nn

from advdistill.evaluation.batching import auto_batch_size, batch_size_for_memory, bytes_per_example

MiB = 2**20


@pytest.mark.parametrize(("free", "per_example", "expected"), [
    # 0.6 · 1000 MiB / (2 · 1 MiB) = 300 -> 288 (a multiple of 32)
    (1000 * MiB, 1 * MiB, 288),
    # 0.6 · 100 MiB / (2 · 1 MiB) = 30: below 32, kept as is
    (100 * MiB, 1 * MiB, 30),
    # nothing fits: at least one image
    (1 * MiB, 10 * MiB, 1),
    # plenty of memory: capped
    (10**15, 1 * MiB, 8192),
])
def test_batch_size_for_memory(free, per_example, expected):
    assert batch_size_for_memory(free, per_example) == expected


def test_batch_size_for_memory_parameters():
    # 0.5 · 640 / (1 · 10) = 32 exactly
    assert batch_size_for_memory(640, 10, fraction=0.5, safety=1.0) == 32
    assert batch_size_for_memory(640, 10, fraction=0.5, safety=1.0, multiple=10) == 30
    assert batch_size_for_memory(640, 10, fraction=0.5, safety=1.0, maximum=20) == 20
    assert batch_size_for_memory(0, 10, minimum=4) == 4
    assert batch_size_for_memory(640, 0) == 8192  # no measurable memory per example


def test_cpu_uses_the_default_without_probing():
    class Exploding(nn.Module):
        def forward(self, x):
            raise AssertionError("the model must not run on CPU")

    assert auto_batch_size(Exploding(), torch.rand(3, 3, 8, 8), default=256, n_examples=3) == 256


@pytest.mark.cuda
def test_probe_measures_memory_that_grows_with_the_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)).cuda().eval()
    x = torch.rand(2, 3, 32, 32, device="cuda")
    per_example = bytes_per_example(model, x)
    # the two 64-channel maps of one 32x32 image in float32 are kept for the backward: >= 0.5 MiB
    assert 0.4 * MiB < per_example < 64 * MiB
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    size = auto_batch_size(model, x, default=7, n_examples=10_000)
    assert 32 <= size <= 8192 and size % 32 == 0
    assert auto_batch_size(model, x, default=7, n_examples=5) == 5
