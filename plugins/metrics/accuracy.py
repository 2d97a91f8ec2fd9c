"""Clean and adversarial (PGD) accuracy."""

from __future__ import annotations

from typing import Any

import torch

from advdistill.components import build
from advdistill.config import config_to_dict
from advdistill.evaluation.threat import ThreatModel, resolve_threat
from advdistill.interfaces import Metric
from advdistill_plugins.metrics.config import PGDL1MetricConfig, PGDL2MetricConfig, PGDMetricConfig


class Clean(Metric):
    """Top-1 accuracy (%) on the clean test images → key ``clean`` (per image: recorded as ``clean``)."""

    mean_over_images = True

    def evaluate(self, ctx):
        with torch.no_grad():
            correct = torch.cat([ctx.model(x).argmax(1) == y for x, y in ctx.batches("clean")])
        ctx.record("clean", correct)
        return {"clean": 100.0 * correct.sum().item() / ctx.n_examples}


class PGDAccuracy(Metric):
    """Accuracy (%) under PGD on CE at the run's threat model: the recipe's ``[attack]`` norm and ε
    (else Linf 8/255, the paper's), step ε/4, 20 steps, uniform start — the paper's PGD-20.

    ``eps``/``norm`` given take precedence; ``norm = "l2"`` (ε 128/255) and ``"l1"`` (ε 12) are
    the unseen attacks of Table 6. Keys: ``pgd<steps>`` at the run's norm (or Linf), ``pgd_l2`` /
    ``pgd_l1`` for another given norm; the per-image robust flags are recorded under the same key.
    """

    mean_over_images = True

    Config = PGDMetricConfig

    @property
    def key(self) -> str:
        cfg = self.config
        return cfg.key or (f"pgd{cfg.steps}" if cfg.norm in (None, "linf") else f"pgd_{cfg.norm}")

    def threat(self, ctx: Any = None) -> ThreatModel:
        """The threat model this metric attacks at in ``ctx``: its own norm/eps, else the run's
        (without a context: the paper's default radius)."""
        return resolve_threat(getattr(ctx, "recipe", None), norm=self.config.norm, eps=self.config.eps)

    def attack(self, threat: ThreatModel | None = None):
        """The ``pgd`` attack this metric runs at ``threat`` (default: :meth:`threat` without a run)."""
        cfg = self.config
        threat = threat or self.threat()
        step = cfg.step_size if cfg.step_size is not None else threat.eps / 4
        return build(
            "attack", "pgd", eps=threat.eps, step_size=step, steps=cfg.steps, norm=threat.norm,
            start="uniform" if cfg.random_start else "none",
        )

    def evaluate(self, ctx):
        cfg = self.config
        threat = self.threat(ctx)
        attack = self.attack(threat)
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
        ctx.describe(self.key, threat=threat, attack="pgd", settings=config_to_dict(attack.config),
                     label=f"PGD-{cfg.steps}" + (f" ×{cfg.restarts} restarts" if cfg.restarts > 1 else ""))
        return {self.key: 100.0 * flags.sum().item() / ctx.n_examples}


class PGDL2Accuracy(PGDAccuracy):
    """Accuracy (%) under the unseen L2 PGD-20 of Table 6 (ε 128/255, or the run's ε when it is an L2
    run; step ε/4) → key ``pgd_l2``."""

    Config = PGDL2MetricConfig


class PGDL1Accuracy(PGDAccuracy):
    """Accuracy (%) under the unseen L1 PGD-20 of Table 6 (ε 12, or the run's ε when it is an L1 run;
    step ε/4, sparse L1 steps) → key ``pgd_l1``."""

    Config = PGDL1MetricConfig
