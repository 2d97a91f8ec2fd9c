"""Inner maximizations that use the teacher's outputs (adversarial distillation methods)."""

from __future__ import annotations

import attrs
import torch
from attrs import define, field

from advdistill.config import one_of
from advdistill.losses import kl_div
from advdistill_plugins.attacks.base import IterativeAttack, IterativeConfig


@define(frozen=True, kw_only=True)
class RSLADInnerConfig(IterativeConfig):
    start: str = field(default="normal", validator=one_of("uniform", "normal", "none"))
    clamp_start: bool = field(default=False, validator=attrs.validators.instance_of(bool))


class RSLADInner(IterativeAttack):
    """RSLAD's inner maximization: ascend Σ KL(p_T(x) ‖ p_S(x')) from x + 0.001·N(0, 1).

    The target is the teacher's soft label on the *clean* input, computed once per batch
    (and shared with the objective through the step context).
    """

    Config = RSLADInnerConfig
    requires_teacher = True

    def prepare(self, model, x, y, teacher, context):
        if context is not None:
            return context.teacher_logits(0.0)
        with torch.no_grad():
            return teacher(x).float()

    def loss(self, model, x_adv, y, prepared, teacher):
        return kl_div(prepared, model(x_adv).float(), reduction="sum")
