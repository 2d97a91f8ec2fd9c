"""What the step benchmarks share: a Trainer on synthetic data with a random teacher, and timing.

The benchmarks need no data set and no teacher weights: the recipe's data is replaced by the
``synthetic`` data set, and its teacher by a randomly initialised model of the requested
architecture, saved once as a ``checkpoint`` teacher.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import time
from pathlib import Path
from typing import Any

import torch

import advdistill as ad
from advdistill.engine.checkpoint import save_weights
from advdistill.interfaces import Progress
from advdistill.recipe.loading import load_chain

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "cifar10" / "resnet18"
#: images in one CIFAR training epoch (seconds per epoch = this / images per second)
EPOCH_IMAGES = 50_000


def count(minimum: int):
    """argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text}")
        return value

    return parse


def toml_table(text: str) -> dict[str, Any]:
    """``'{kind = "small_cnn", widths = [8, 16]}'`` -> a dict."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(f"v = {text}")["v"]


def save_random_teacher(arch: str, num_classes: int, path: Path) -> Path:
    """A randomly initialised model of architecture table ``arch`` (TOML), saved as safetensors."""
    table = toml_table(arch)
    teacher = ad.create_model(table.pop("kind"), num_classes=num_classes, in_chans=3, **table)
    save_weights(path, teacher)
    return path


def recipe_has_teacher(recipe_path: Path) -> bool:
    return "teacher" in load_chain(recipe_path)[0]


def synthetic_overrides(
    recipe_path: Path,
    *,
    student: str,
    teacher_path: Path,
    teacher_arch: str,
    device: str,
    batch_size: int,
    image_size: int,
    num_classes: int,
    attack_steps: int,
    amp: bool,
) -> list[str]:
    """``--set`` overrides that run ``recipe_path`` on synthetic data with the given models."""
    overrides = [
        f"data={{kind = \"synthetic\", n_train = {batch_size}, n_test = {batch_size}, "
        f"num_classes = {num_classes}, image_size = {image_size}}}",
        f"student={student}",
        f"train.device={device}", f"train.batch_size={batch_size}",
        f"train.amp={'true' if amp else 'false'}", "eval.at_end=false", "train.audit_teacher=false",
        "callbacks.periodic_eval=false", "callbacks.linearity=false",  # the step is timed, not the epoch
        f"attack.steps={attack_steps}",
    ]
    if recipe_has_teacher(recipe_path):
        overrides.append(f'teacher={{kind = "checkpoint", path = "{teacher_path.as_posix()}", model = {teacher_arch}}}')
    return overrides


def make_trainer(recipe_path: Path, overrides: list[str], out_dir: Path):
    """A Trainer for the recipe with ``overrides`` (no files are written before ``fit``)."""
    from advdistill.engine.trainer import Trainer

    return Trainer(ad.load_recipe(recipe_path, overrides), out_dir)


def last_epoch(trainer) -> Progress:
    """The last epoch's progress: every scheduled loss weight at its final value."""
    return Progress(trainer.cfg.epochs, trainer.cfg.epochs, 0, 1)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> tuple[float, Any]:
    """Wall-clock seconds of one call of ``fn()`` (CUDA synchronised at both ends) and its value."""
    synchronize(device)
    start = time.perf_counter()
    value = fn()
    synchronize(device)
    return time.perf_counter() - start, value


def time_block(step, n: int, device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds per call of ``step()`` over ``n`` calls.

    CUDA is synchronised at both ends only. The CPU time counts the work of this process
    alone, so on a shared machine it is the measure least disturbed by other processes.
    """
    if n == 0:
        return 0.0, 0.0
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    synchronize(device)
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


class PeakMemory:
    """Peak memory of a block: CUDA ``max_memory_allocated``, or the process's peak RSS on CPU.

    On CPU the kernel's peak-RSS counter (VmHWM) is reset before the block (``/proc/self/clear_refs``),
    so the peak belongs to the block; where that is not possible it is the process's peak so far.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0
        self.step_bytes = 0  # the peak above what was resident when the block started
        self._start = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            _reset_peak_rss()
            self._start = _rss_bytes("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = _rss_bytes("VmHWM")
        self.peak_bytes = max(self.peak_bytes, peak)
        self.step_bytes = max(self.step_bytes, peak - self._start)


def _rss_bytes(field: str) -> int:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:  # not Linux: the process's peak from getrusage (KiB on Linux, bytes on macOS)
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
