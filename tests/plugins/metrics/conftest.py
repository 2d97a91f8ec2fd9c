"""Fixtures for metric tests: tiny images, a model whose clean predictions are the labels, contexts."""

from __future__ import annotations

import pytest
import torch

from advdistill.evaluation.context import EvalContext
from advdistill.torch_utils import freeze


class SmallNet(torch.nn.Module):
    """Conv + linear head on 1×8×8 images, 4 classes; BatchNorm in eval mode."""

    def __init__(self, width: int = 6, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(1, width, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(width)
        self.fc = torch.nn.Linear(width * 16, 4)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(h, 4).flatten(1)) * 4


@pytest.fixture
def model():
    return freeze(SmallNet(seed=11))


@pytest.fixture
def teacher():
    return freeze(SmallNet(width=8, seed=12))


@pytest.fixture
def images():
    """uint8 images (24, 1, 8, 8), as data sets store them."""
    g = torch.Generator().manual_seed(5)
    return (torch.rand(24, 1, 8, 8, generator=g) * 255).round().to(torch.uint8)


@pytest.fixture
def labels(model, images):
    """The model's clean predictions: clean accuracy 100 %, so robust accuracy is informative."""
    with torch.no_grad():
        return model(images.float() / 255).argmax(1)


@pytest.fixture
def make_ctx(model, teacher, images, labels):
    def make(**kwargs) -> EvalContext:
        options = dict(model=model, images=images, labels=labels, device=torch.device("cpu"), batch_size=10,
                       teacher=teacher, show_progress=False)
        options.update(kwargs)
        return EvalContext(**options)

    return make
