"""Point-wise alignment of teacher and student (the paper's Table 5)."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from attrs import define, field
from attrs.validators import instance_of

from advdistill.components import build, build_from_table
from advdistill.config import as_float, component_table, in_range, integer, optional
from advdistill.interfaces import Attack, Metric
from advdistill_plugins.metrics.common import uniform_perturbation


@define(frozen=True, kw_only=True)
class PointwiseConfig:
    #: δ ~ U[−uniform_eps, uniform_eps] per pixel for pointwise_uniform
    uniform_eps: float = field(
        default=8 / 255, converter=as_float, validator=in_range(0.0, 1.0, low_open=True)
    )
    #: keep x + δ in [0, 1] for the uniform noise (attacks always do)
    clamp: bool = field(default=True, validator=instance_of(bool))
    #: steps of the attack that makes δ for pointwise_adv (the paper: 20)
    adv_steps: int = field(default=20, validator=integer(0))
    #: the attack for pointwise_adv as a table; None: the recipe's [attack] (the method's inner
    #: loss) with steps = adv_steps, or PGD (Linf 8/255, step 2/255) when the recipe has none
    attack: dict[str, Any] | None = field(
        default=None, converter=component_table("attack", '{kind = "pgd", steps = 20}'),
        validator=optional(instance_of(dict)),
    )


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
