"""Inner maximizations that use the teacher's outputs (adversarial distillation methods)."""

from __future__ import annotations

import torch

from advdistill.losses import kl_div
from advdistill_plugins.attacks.base import IterativeAttack, NormalStartConfig


class RSLADInner(IterativeAttack):
    """RSLAD's inner maximization: ascend Σ KL(p_T(x) ‖ p_S(x')) from x + 0.001·N(0, 1).

    The target is the teacher's soft label on the *clean* input, computed once per batch
    (and shared with the objective through the step context).
    """

    Config = NormalStartConfig
    requires_teacher = True

    def prepare(self, model, x, y, teacher, context):
        if context is not None:
            return context.teacher_logits(0.0)
        with torch.no_grad():
            return teacher(x).float()

    def loss(self, model, x_adv, y, prepared, teacher):
        return kl_div(prepared, model(x_adv).float(), reduction="sum")


class AdaADInner(IterativeAttack):
    """AdaAD inner max: ascend Σ KL(p_T(x') ‖ p_S(x')) from x + 0.001·N(0, 1) (start not clamped).

    The teacher sees the same perturbed input and is *not* detached, as in the official
    ``adaad_inner_loss``: the input gradient flows through both networks (detaching the
    teacher changes x_adv noticeably). Each step costs a forward and backward of the teacher.
    """

    Config = NormalStartConfig
    requires_teacher = True

    def loss(self, model, x_adv, y, prepared, teacher):
        return kl_div(teacher(x_adv).float(), model(x_adv).float(), reduction="sum")
