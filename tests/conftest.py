"""Shared fixtures; the advdistill pytest plugin (advdistill.testing) provides the rest."""

from __future__ import annotations

import pytest
import torch


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


class PausedProcess:
    """A real ``advdistill`` process stopped at a named pause point (ADVDISTILL_TEST_PAUSE_AT)."""

    def __init__(self, args, point: str, *, cwd=None, env=None, timeout: float = 120.0) -> None:
        import os
        import subprocess
        import sys
        import time

        full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
        full_env["ADVDISTILL_TEST_PAUSE_AT"] = point
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "advdistill.cli", *map(str, args)], cwd=cwd, env=full_env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.stderr: list[str] = []
        deadline = time.monotonic() + timeout
        marker = f"advdistill: paused at {point} "
        while True:  # the marker is the last thing the process writes before it sleeps
            line = self.proc.stderr.readline()
            if not line:
                out = self.proc.stdout.read()
                self.proc.wait()
                raise AssertionError(
                    f"the process ended (status {self.proc.returncode}) without reaching {point!r}:\n"
                    + "".join(self.stderr)[-3000:] + out[-2000:]
                )
            self.stderr.append(line)
            if line.startswith(marker):
                break
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"{point!r} not reached in {timeout} s:\n" + "".join(self.stderr)[-3000:])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self, sig=None) -> int:
        """Send ``sig`` (default SIGKILL) and wait; returns the exit status."""
        import signal

        self.proc.send_signal(sig or signal.SIGKILL)
        self.proc.communicate(timeout=60)
        return self.proc.returncode


@pytest.fixture
def paused_cli():
    """``paused_cli(args, point)`` starts ``advdistill ARGS`` and returns once it sleeps at ``point``."""
    started: list[PausedProcess] = []

    def start(args, point, **kwargs) -> PausedProcess:
        process = PausedProcess(args, point, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:  # never leave a sleeping process behind
        if process.proc.poll() is None:
            process.kill()
