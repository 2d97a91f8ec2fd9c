"""Shared fixtures; the advdistill pytest plugin (advdistill.testing) provides the rest."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import advdistill as ad
from advdistill import hookimpl
from advdistill.engine.checkpoint import save_weights
from advdistill.interfaces import ModelFactory, Progress


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


class PausedProcess:
    """A real ``advdistill`` process stopped at a named pause point (ADVDISTILL_TEST_PAUSE_AT)."""

    def __init__(self, args, point: str, *, cwd=None, env=None, timeout: float = 120.0) -> None:
        import time

        full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
        full_env["ADVDISTILL_TEST_PAUSE_AT"] = point
        # W&B keeps its service's address in os.environ once this test process has used it: a child
        # inheriting it would register its run with this process's service, and a killed child's run
        # would then stay "in use" there, refusing the resume (as a real, separate process would not)
        full_env.pop("WANDB_SERVICE", None)
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


# -- engine: one distillation step from fixed seeds, to compare settings ------------------------

@pytest.fixture
def distill_steps(tiny_recipe, tmp_path, tiny_bn_net):
    """``distill_steps(name, steps=1, **train)``: a Trainer, its losses and the student's weights
    after ``steps`` steps on one batch, from fixed seeds (``train`` adds [train] keys).

    AdaAD + IGDM with a BatchNorm student: the attack with the teacher in the loop and the student
    in eval mode, the batched teacher points, three student forwards in train mode.
    """
    torch.manual_seed(5)
    teacher_arch = {"kind": "small_cnn", "widths": [6], "hidden": 8}
    save_weights(tmp_path / "teacher.safetensors", ad.create_model("small_cnn", num_classes=4, in_chans=1,
                                                                   widths=[6], hidden=8))

    def run(name, steps=1, **train):
        from advdistill.engine.trainer import Trainer

        torch.manual_seed(0)
        recipe = tiny_recipe(
            f"{name}.toml", student={"kind": "tiny_bn_net"},
            teacher={"kind": "checkpoint", "path": str(tmp_path / "teacher.safetensors"), "model": teacher_arch},
            attack={"kind": "adaad_kl", "steps": 2}, objective={"kind": "adaad"},
            aux={"igdm": {"kind": "igdm", "alpha": 2.0}},
            train={"epochs": 1, "batch_size": 16, "device": "cpu", **train},
        )
        trainer = Trainer(ad.load_recipe(recipe), tmp_path / name)
        x, y = next(iter(trainer.train_loader))
        trainer.attack_generator.manual_seed(7)
        losses = [float(trainer.train_step(x, y, Progress(1, 1), 0.05)[0]) for _ in range(steps)]
        weights = {k: v.detach().cpu().clone() for k, v in trainer.student.state_dict().items()}
        return trainer, losses, weights

    return run


@pytest.fixture
def assert_same_steps():
    """``assert_same_steps(a, b, rtol)``: two ``distill_steps`` results agree, every loss and weight."""

    def check(a, b, rtol: float, atol: float = 1e-6) -> None:
        _, losses_a, weights_a = a
        _, losses_b, weights_b = b
        assert losses_a == pytest.approx(losses_b, rel=rtol)
        for key in weights_a:
            assert torch.allclose(weights_a[key].float(), weights_b[key].float(), rtol=rtol, atol=atol), key

    return check


# -- benchmarks/: the scripts are not a package; import them by path --------------------------

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def benchmark_script():
    """``benchmark_script("step_time")``: the module of ``benchmarks/step_time.py``."""

    def load(name: str):
        if str(BENCHMARKS) not in sys.path:
            sys.path.insert(0, str(BENCHMARKS))
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def fresh_python():
    """Run Python ``code`` in a new interpreter (one thread): what it imports is what a command
    started from scratch would. Returns the finished process; a non-zero exit fails the test."""

    def run(code: str, *, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                                cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr
        return result

    return run
