"""Shared fixtures; the advdistill pytest plugin (advdistill.testing) provides the rest."""

from __future__ import annotations

import pytest
import torch

from advdistill import hookimpl
from advdistill.interfaces import ModelFactory


@pytest.fixture(autouse=True)
def _deterministic_single_thread():
    """Seeded, and one intra-op thread: tiny tensors run fastest on one thread, and two
    OpenMP threads that wait for each other make them 10-50x slower on a busy 2-core machine."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyNet(torch.nn.Module):
    """A deterministic, BN-carrying CNN for attack and loss tests."""

    def __init__(self, num_classes: int = 4, in_chans: int = 1, width: int = 6) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(in_chans, width, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(width)
        self.fc = torch.nn.Linear(width * 16, num_classes)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(h, 4).flatten(1))


class TinyNetFactory(ModelFactory):
    """Builds TinyNet for the registry (a model plugin with no parameters)."""

    def build(self, num_classes: int, in_chans: int) -> TinyNet:
        return TinyNet(num_classes=num_classes, in_chans=in_chans)


class TinyNetPlugin:
    @hookimpl
    def register_models(self, register):
        register("tiny_bn_net", TinyNetFactory, summary="TinyNet (conv-BatchNorm-ReLU, pooled, linear), for tests")


@pytest.fixture
def tiny_bn_net(register_plugin):
    """Registers the model ``tiny_bn_net`` (TinyNet: a BatchNorm CNN that runs and compiles in
    moments) for the test's recipes; returns its builder ``(num_classes, in_chans) -> TinyNet``."""
    register_plugin(TinyNetPlugin(), name="tiny_bn_net")
    return TinyNetFactory().build


@pytest.fixture
def tiny_net():
    torch.manual_seed(1)
    return TinyNet()


@pytest.fixture
def tiny_teacher():
    torch.manual_seed(2)
    net = TinyNet(width=8)
    net.eval().requires_grad_(False)
    return net


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(6, 1, 8, 8, generator=g)
    y = torch.randint(0, 4, (6,), generator=g)
    return x, y


@pytest.fixture
def cli_runner():
    """Run the CLI in-process; returns click's Result (asserts the exit code given)."""
    from click.testing import CliRunner

    from advdistill.cli import cli

    def run(*args: str, exit_code: int = 0):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == exit_code, result.output
        return result

    return run
