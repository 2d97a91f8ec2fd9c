"""Clean and adversarial (PGD) accuracy."""

from __future__ import annotations

import torch
from attrs import define, field
from attrs.validators import instance_of

from advdistill.components import build
from advdistill.config import integer, one_of, optional, optional_float, positive_or_none
from advdistill.interfaces import Metric
from advdistill_plugins.metrics.common import DEFAULT_EPS


class Clean(Metric):
    """Top-1 accuracy (%) on the clean test images → key ``clean`` (per image: recorded as ``clean``)."""

    mean_over_images = True

    def evaluate(self, ctx):
        with torch.no_grad():
            correct = torch.cat([ctx.model(x).argmax(1) == y for x, y in ctx.batches("clean")])
        ctx.record("clean", correct)
        return {"clean": 100.0 * correct.sum().item() / ctx.n_examples}


@define(frozen=True, kw_only=True)
class PGDMetricConfig:
    """PGD evaluation; ``eps``/``step_size`` left out take the norm's defaults (see :class:`PGDAccuracy`)."""

    #: the threat model's norm
    norm: str = field(default="linf", validator=one_of("linf", "l2", "l1"))
    #: radius; None: the paper's, 8/255 (Linf), 128/255 (L2), 12 (L1)
    eps: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    #: None: 2/255 for Linf (the paper's PGD-20), ε/4 for L2 and L1
    step_size: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    #: ascent steps
    steps: int = field(default=20, validator=integer(1))
    #: an example counts as robust only if it survives every restart
    restarts: int = field(default=1, validator=integer(1))
    #: start from a uniform random point in the ball (else from x)
    random_start: bool = field(default=True, validator=instance_of(bool))
    #: report key; default pgd<steps> for Linf (pgd20), pgd_l2 / pgd_l1 otherwise
    key: str | None = field(default=None, validator=optional(instance_of(str)))

    @property
    def radius(self) -> float:
        return self.eps if self.eps is not None else DEFAULT_EPS[self.norm]

    @property
    def step(self) -> float:
        """The step: given, else 2/255 for Linf (the paper's PGD-20) and ε/4 for L2 and L1."""
        if self.step_size is not None:
            return self.step_size
        return 2 / 255 if self.norm == "linf" else self.radius / 4


class PGDAccuracy(Metric):
    """Accuracy (%) under PGD on CE; defaults = the paper's PGD-20 (Linf, 8/255, step 2/255, uniform start).

    ``norm = "l2"`` (ε 128/255) and ``"l1"`` (ε 12) are the unseen attacks of Table 6; their
    step defaults to ε/4. Keys: ``pgd<steps>`` for Linf, ``pgd_l2`` / ``pgd_l1`` otherwise; the
    per-image robust flags are recorded under the same key.
    """

    mean_over_images = True

    Config = PGDMetricConfig

    @property
    def key(self) -> str:
        cfg = self.config
        return cfg.key or (f"pgd{cfg.steps}" if cfg.norm == "linf" else f"pgd_{cfg.norm}")

    def attack(self):
        """The ``pgd`` attack this metric runs."""
        cfg = self.config
        return build(
            "attack", "pgd", eps=cfg.radius, step_size=cfg.step, steps=cfg.steps, norm=cfg.norm,
            start="uniform" if cfg.random_start else "none",
        )

    def evaluate(self, ctx):
        cfg = self.config
        attack = self.attack()
        generator = ctx.generator(stream=1)
        robust = []
        for x, y in ctx.batches(self.key):
            alive = torch.ones_like(y, dtype=torch.bool)
            for _ in range(cfg.restarts):
                x_adv = attack.perturb(ctx.model, x, y, generator=generator)
                with torch.no_grad():
                    alive &= ctx.model(x_adv).argmax(1) == y
            robust.append(alive)
        flags = torch.cat(robust)
        ctx.record(self.key, flags)
        return {self.key: 100.0 * flags.sum().item() / ctx.n_examples}


@define(frozen=True, kw_only=True)
class PGDL2MetricConfig(PGDMetricConfig):
    norm: str = field(default="l2", validator=one_of("linf", "l2", "l1"))


@define(frozen=True, kw_only=True)
class PGDL1MetricConfig(PGDMetricConfig):
    norm: str = field(default="l1", validator=one_of("linf", "l2", "l1"))


class PGDL2Accuracy(PGDAccuracy):
    """Accuracy (%) under the unseen L2 PGD-20 of Table 6 (ε 128/255, step ε/4) → key ``pgd_l2``."""

    Config = PGDL2MetricConfig


class PGDL1Accuracy(PGDAccuracy):
    """Accuracy (%) under the unseen L1 PGD-20 of Table 6 (ε 12, step ε/4, sparse L1 steps) → key ``pgd_l1``."""

    Config = PGDL1MetricConfig
