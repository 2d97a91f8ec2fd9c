"""Clean and adversarial accuracy."""

from __future__ import annotations

import torch
from attrs import define, field
from attrs.validators import ge, instance_of, optional

from advdistill.api import build
from advdistill.config import as_float, in_range, one_of
from advdistill.interfaces import Metric
from advdistill.losses import accuracy_count


class Clean(Metric):
    """Top-1 accuracy (%) on the clean test images → key ``clean``."""

    def evaluate(self, ctx):
        correct = torch.zeros((), dtype=torch.long, device=ctx.device)
        with torch.no_grad():
            for x, y in ctx.batches("clean"):
                correct += accuracy_count(ctx.model(x), y)
        return {"clean": 100.0 * correct.item() / ctx.n_examples}


@define(frozen=True, kw_only=True)
class PGDMetricConfig:
    eps: float = field(default=8 / 255, converter=as_float, validator=in_range(0.0, 1e6))
    step_size: float = field(default=2 / 255, converter=as_float, validator=in_range(0.0, 1e6))
    steps: int = field(default=20, validator=[instance_of(int), ge(1)])
    norm: str = field(default="linf", validator=one_of("linf", "l2", "l1"))
    #: an example counts as robust only if it survives every restart
    restarts: int = field(default=1, validator=[instance_of(int), ge(1)])
    random_start: bool = field(default=True, validator=instance_of(bool))
    #: report key; default pgd<steps> for Linf (pgd20), pgd_l2 / pgd_l1 otherwise
    key: str | None = field(default=None, validator=optional(instance_of(str)))


class PGDAccuracy(Metric):
    """Accuracy (%) under PGD on CE; defaults = the paper's PGD-20 (Linf, 8/255, step 2/255, uniform start)."""

    Config = PGDMetricConfig

    @property
    def key(self) -> str:
        cfg = self.config
        return cfg.key or (f"pgd{cfg.steps}" if cfg.norm == "linf" else f"pgd_{cfg.norm}")

    def evaluate(self, ctx):
        cfg = self.config
        attack = build(
            "attack", "pgd", eps=cfg.eps, step_size=cfg.step_size, steps=cfg.steps, norm=cfg.norm,
            start="uniform" if cfg.random_start else "none",
        )
        generator = ctx.generator(stream=1)
        robust = torch.zeros((), dtype=torch.long, device=ctx.device)
        for x, y in ctx.batches(self.key):
            alive = torch.ones_like(y, dtype=torch.bool)
            for _ in range(cfg.restarts):
                x_adv = attack.perturb(ctx.model, x, y, generator=generator)
                with torch.no_grad():
                    alive &= ctx.model(x_adv).argmax(1) == y
            robust += alive.sum()
        return {self.key: 100.0 * robust.item() / ctx.n_examples}
