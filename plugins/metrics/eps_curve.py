"""Robust accuracy against growing ε (the paper's Fig. 5): PGD and AutoAttack's APGD per radius.

The radii are nested balls, so an image broken at a smaller radius is broken at every larger
one: each radius attacks only the images that survived the previous (smaller) one, and PGD
starts there from the adversarial point it reached at that radius.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import torch
from torch import Tensor

from advdistill.components import build
from advdistill.config import config_to_dict
from advdistill.evaluation.threat import FROM_METRIC, ThreatModel, eps_text
from advdistill.interfaces import Metric
from advdistill_plugins.metrics.autoattack import AutoAttackConfig, AutoAttackMetric
from advdistill_plugins.metrics.config import EpsCurveConfig

log = logging.getLogger(__name__)

#: the default radii as multiples of the run's ε: the paper's 8, 10, 12, 14, 16 /255 at 8/255
MULTIPLES = (1.0, 1.25, 1.5, 1.75, 2.0)


def record_prefix(eps: float) -> str:
    """Where a point's per-image flags are recorded: ``eps_curve@<eps>/`` + ``pgd20`` / ``autoattack``."""
    return f"eps_curve@{eps:.6g}/"


def _images(ctx: Any, index: Tensor) -> tuple[Tensor, Tensor]:
    """The test images at ``index`` as float in [0, 1] and their labels, on the device."""
    x = ctx.images[index].to(ctx.device).float().div_(255.0)
    return x, ctx.labels[index].to(ctx.device, dtype=torch.long)


class EpsCurve(Metric):
    """PGD-20 and AutoAttack (APGD-CE + APGD-T by default) accuracy (%) at each ε of a list →
    key ``eps_curve``: ``[{"eps", "pgd20", "autoattack"}, ...]`` in increasing ε (autoattack null
    when off). Default radii: 1, 1.25, 1.5, 1.75, 2 × the run's ε (8…16/255 at 8/255, Fig. 5).

    Each radius attacks only the images still robust at the previous radius (an image broken at
    a smaller radius is broken at every larger one; the first radius attacks the correctly
    classified ones), and PGD restarts there from the adversarial point it reached at the
    previous radius. Per image: recorded as ``eps_curve@<eps>/pgd20`` and
    ``eps_curve@<eps>/autoattack`` (ε in pixel units, 6 significant digits).
    """

    mean_over_images = True

    Config = EpsCurveConfig

    def radii(self, base: ThreatModel) -> list[ThreatModel]:
        """The balls in increasing ε: ``eps``, else ``multiples`` of the run's ε (``base``)."""
        cfg = self.config
        if cfg.eps is not None:
            return [ThreatModel(base.norm, eps, FROM_METRIC) for eps in sorted(set(cfg.eps))]
        return [base.scaled(m) for m in sorted(set(cfg.multiples or MULTIPLES))]

    def evaluate(self, ctx):
        cfg = self.config
        base = ctx.threat(norm=cfg.norm)
        balls = self.radii(base)
        step = cfg.step_size if cfg.step_size is not None else base.eps / 4
        key = f"pgd{cfg.steps}"
        with torch.no_grad():
            clean = torch.cat([ctx.model(x).argmax(1) == y for x, y in ctx.batches("eps_curve clean")]).cpu()
        pgd = self._pgd_curve(ctx, clean, balls, step, key)
        aa = self._autoattack_curve(ctx, clean, balls) if cfg.autoattack is not None else None
        curve = []
        for i, eps in enumerate(ball.eps for ball in balls):
            point: dict[str, Any] = {"eps": eps, key: 100.0 * int(pgd[i].sum()) / ctx.n_examples,
                                     "autoattack": None if aa is None else 100.0 * int(aa[i].sum()) / ctx.n_examples}
            log.info("eps_curve: ε = %s: %s", eps_text(eps), point)
            curve.append(point)
        return {"eps_curve": curve}

    def _pgd_curve(self, ctx: Any, clean: Tensor, balls: list[ThreatModel], step: float, key: str) -> list[Tensor]:
        """Per radius, the PGD-robust flags (N,): survivors of the previous radius, attacked from
        the points PGD reached there."""
        cfg = self.config
        generator = ctx.generator(stream=7)
        alive = clean.clone()
        starts: Tensor | None = None  # the adversarial points of the previous radius (CPU, float)
        flags = []
        for ball in balls:
            eps = ball.eps
            attack = build("attack", "pgd", eps=eps, step_size=step, steps=cfg.steps, norm=ball.norm, start="uniform")
            index = alive.nonzero().flatten()
            for chunk in ctx.progress(index.split(ctx.batch_size), desc=f"eps_curve PGD ε = {eps_text(eps)}",
                                      unit="batch"):
                x, y = _images(ctx, chunk)
                warm = starts[chunk].to(ctx.device) if starts is not None else None
                survived = torch.ones_like(y, dtype=torch.bool)
                for restart in range(cfg.restarts):
                    x_adv = attack.perturb(ctx.model, x, y, generator=generator,
                                           x_start=warm if restart == 0 else None)
                    with torch.no_grad():
                        survived &= ctx.model(x_adv).argmax(1) == y
                    if restart == 0:
                        if starts is None:
                            starts = torch.zeros((ctx.n_examples, *x.shape[1:]), dtype=x_adv.dtype)
                        starts[chunk] = x_adv.cpu()
                alive[chunk] = survived.cpu()
            flags.append(alive.clone())
            at_eps = ctx.scoped(record_prefix(eps))
            at_eps.record(key, flags[-1])
            at_eps.describe(key, threat=ball, attack="pgd", label=f"PGD-{cfg.steps} (warm-started)",
                            settings=config_to_dict(attack.config))
        return flags

    def _autoattack_curve(self, ctx: Any, clean: Tensor, balls: list[ThreatModel]) -> list[Tensor]:
        """Per radius, the AutoAttack-robust flags (N,): AutoAttack runs on the survivors of the
        previous radius only (the package takes no start points)."""
        settings = self.config.autoattack
        metric = AutoAttackMetric(AutoAttackConfig(**{**settings, "norm": balls[0].norm, "key": "autoattack"}))
        alive = clean.clone()
        flags = []
        for threat in balls:
            eps = threat.eps
            index = alive.nonzero().flatten()
            if index.numel():
                survivors = attrs.evolve(ctx, images=ctx.images[index], labels=ctx.labels[index], records={},
                                         threats={}, record_prefix="", label=f"eps_curve AA ε = {eps_text(eps)}")
                alive[index] = metric.robust_flags(survivors, threat).cpu()
            flags.append(alive.clone())
            at_eps = ctx.scoped(record_prefix(eps))
            at_eps.record("autoattack", flags[-1])
            at_eps.describe("autoattack", threat=threat, attack="autoattack", label=metric.config.attack_names(),
                            settings=dict(settings))
        return flags
