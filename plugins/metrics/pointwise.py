"""Point-wise alignment of teacher and student (the paper's Table 5)."""

from __future__ import annotations

from typing import Any

import attrs
import torch

from advdistill.components import build, build_from_table
from advdistill.interfaces import Attack, Metric
from advdistill_plugins.metrics.common import uniform_perturbation
from advdistill_plugins.metrics.config import PointwiseConfig


def with_steps(config: Any, steps: int) -> Any:
    """``config`` with ``steps`` replaced, when the attack has such a parameter."""
    if config is not None and attrs.has(type(config)) and "steps" in attrs.fields_dict(type(config)):
        return attrs.evolve(config, steps=steps)
    return config


class Pointwise(Metric):
    """Mean ‖f_T(x+δ) − f_S(x+δ)‖₂ on logits for δ = 0, δ ~ U[−8/255, 8/255] and δ from a
    20-step attack with the method's inner loss → keys ``pointwise_zero``, ``pointwise_uniform``,
    ``pointwise_adv``."""

    mean_over_images = True

    Config = PointwiseConfig
    requires_teacher = True

    def adversary(self, recipe: Any) -> Attack:
        """The attack making δ for ``pointwise_adv``."""
        cfg = self.config
        if cfg.attack is not None:
            return build_from_table("attack", {"steps": cfg.adv_steps, **cfg.attack})
        ref = getattr(recipe, "attack", None)
        if ref is None:
            return build("attack", "pgd", steps=cfg.adv_steps)
        return ref.load()(with_steps(ref.config, cfg.adv_steps))

    def evaluate(self, ctx):
        cfg = self.config
        attack = self.adversary(ctx.recipe)
        uniform_gen, attack_gen = ctx.generator(stream=3), ctx.generator(stream=4)
        sums = torch.zeros(3, dtype=torch.float64, device=ctx.device)
        for x, y in ctx.batches("pointwise"):
            # as in training: the attack runs on the student and may read the teacher
            x_adv = attack.perturb(ctx.model, x, y, teacher=ctx.teacher, generator=attack_gen)
            x_uniform = x + uniform_perturbation(x, cfg.uniform_eps, uniform_gen, clamp=cfg.clamp)
            points = torch.cat([x, x_uniform, x_adv])  # one batched forward per model
            with torch.no_grad():
                gap = ctx.teacher(points).float() - ctx.model(points).float()
            sums += gap.norm(dim=1).view(3, -1).double().sum(dim=1)
        zero, uniform, adv = (sums / ctx.n_examples).tolist()
        return {"pointwise_zero": zero, "pointwise_uniform": uniform, "pointwise_adv": adv}
