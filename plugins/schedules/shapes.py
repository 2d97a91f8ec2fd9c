"""The schedule shapes. Every schedule shares ``unit`` and an optional linear warm-up.

Time is measured in epochs elapsed before the current step, ``e`` in [0, E):
``unit = "epoch"`` (default) uses whole epochs (``e = epoch − 1``), as the official training
loops update hyper-parameters once per epoch; ``unit = "step"`` uses fractional epochs.
"""

from __future__ import annotations

import abc
import math

from attrs import define, field

from advdistill.config import as_float, as_int_tuple, each, finite, in_range, integer, one_of
from advdistill.interfaces import Progress, Schedule


@define(frozen=True, kw_only=True)
class ScheduleConfig:
    #: "epoch": the value changes once per epoch (the official loops); "step": per step, on fractional epochs
    unit: str = field(default="epoch", validator=one_of("epoch", "step"))
    #: ramp linearly from warmup_start to the schedule's value over this many epochs; the
    #: current epoch (or step) counts as done, so epoch 1 of a 3-epoch warm-up gets 1/3
    warmup_epochs: float = field(default=0.0, converter=as_float, validator=in_range(0.0))
    #: the value the warm-up starts from
    warmup_start: float = field(default=0.0, converter=as_float, validator=finite)


class Shape(Schedule):
    """Base: subclasses give :meth:`value` as a function of elapsed epochs ``e``."""

    Config = ScheduleConfig

    @abc.abstractmethod
    def value(self, elapsed: float, done: float, total: int) -> float:
        """The value after ``elapsed`` epochs (``done`` counts the current epoch/step too) of ``total``."""

    def points(self) -> tuple[float, ...]:
        """Values between which the schedule stays (without the warm-up); subclasses list theirs."""
        return ()

    def extremes(self) -> tuple[float, float]:
        """The lowest and highest value over any run (checked against a recipe key's range)."""
        values = list(self.points())
        if self.config.warmup_epochs > 0:
            values.append(self.config.warmup_start)
        return min(values), max(values)

    def __call__(self, progress: Progress) -> float:
        cfg = self.config
        if cfg.unit == "epoch":
            elapsed, done = float(progress.epoch - 1), float(progress.epoch)
        else:
            elapsed = (progress.epoch - 1) + progress.step_in_epoch / progress.steps_per_epoch
            done = elapsed + 1.0 / progress.steps_per_epoch
        v = self.value(elapsed, done, progress.epochs)
        if cfg.warmup_epochs > 0 and done < cfg.warmup_epochs:
            v = cfg.warmup_start + (v - cfg.warmup_start) * (done / cfg.warmup_epochs)
        return v


@define(frozen=True, kw_only=True)
class ConstantConfig(ScheduleConfig):
    #: the value at every step
    value: float = field(converter=as_float, validator=finite)


class Constant(Shape):
    """The same value at every step."""

    Config = ConstantConfig

    def value(self, elapsed, done, total):
        return self.config.value

    def points(self):
        return (self.config.value,)


@define(frozen=True, kw_only=True)
class LinearConfig(ScheduleConfig):
    #: the value at the last epoch
    end: float = field(converter=as_float, validator=finite)
    #: the value at epoch 0 (the first epoch gets start + (end − start)/E)
    start: float = field(default=0.0, converter=as_float, validator=finite)


class Linear(Shape):
    """start + (end − start)·epoch/E, epoch from 1: with start = 0, end = α, IGDM's T(α) = α·epoch/E.

    The first epoch of an E-epoch run gets start + (end − start)/E, the last exactly ``end``.
    """

    Config = LinearConfig

    def value(self, elapsed, done, total):
        return self.config.start + (self.config.end - self.config.start) * min(done / total, 1.0)

    def points(self):
        return (self.config.start, self.config.end)


@define(frozen=True, kw_only=True)
class StepConfig(ScheduleConfig):
    #: the value before the first milestone
    value: float = field(converter=as_float, validator=finite)
    #: once this many epochs are completed the value is multiplied by gamma (PyTorch MultiStepLR)
    milestones: tuple[int, ...] = field(default=(), converter=as_int_tuple, validator=each(integer(0)))
    #: factor applied at each milestone
    gamma: float = field(default=0.1, converter=as_float, validator=in_range(0.0))


class Step(Shape):
    """value·gamma^k, k = number of milestones m with at least m epochs completed."""

    Config = StepConfig

    def value(self, elapsed, done, total):
        passed = sum(1 for m in self.config.milestones if elapsed >= m)
        return self.config.value * self.config.gamma**passed

    def points(self):
        cfg = self.config
        return tuple(cfg.value * cfg.gamma**k for k in range(len(cfg.milestones) + 1))


@define(frozen=True, kw_only=True)
class CosineConfig(ScheduleConfig):
    #: the value at the first epoch
    start: float = field(converter=as_float, validator=finite)
    #: the value approached at the end of training
    end: float = field(default=0.0, converter=as_float, validator=finite)


class Cosine(Shape):
    """end + (start − end)·(1 + cos(π·e/E))/2: ``start`` at the first step, approaching ``end``."""

    Config = CosineConfig

    def value(self, elapsed, done, total):
        u = min(max(elapsed / total, 0.0), 1.0)
        return self.config.end + (self.config.start - self.config.end) * 0.5 * (1 + math.cos(math.pi * u))

    def points(self):
        return (self.config.start, self.config.end)
