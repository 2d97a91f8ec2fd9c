"""RSLAD (Zi et al., ICCV 2021): its inner maximization (``rslad_kl``) and its objective (``rslad``)."""

from __future__ import annotations

import torch

from advdistill.interfaces import Objective
from advdistill.losses import kl_div
from advdistill_plugins.attacks.base import IterativeAttack, NormalStartConfig
from advdistill_plugins.methods.config import RSLADConfig


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


def rslad_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, cfg: RSLADConfig) -> torch.Tensor:
    """RSLAD's KL term between teacher soft labels and the student (B, C) logits, in the configured form."""
    return kl_div(
        teacher_logits, student_logits, temperature=cfg.temperature, reduction=cfg.reduction,
        target_eps=1e-5 if cfg.form == "official" else 0.0,  # the official −a·b + b·log(b + 1e-5)
    )


class RSLAD(Objective):
    """L = scale·[adv_weight·KL(p_T(x) ‖ p_S(x_adv)) + nat_weight·KL(p_T(x) ‖ p_S(x))], (B, C) logits.

    Follows the official code: elementwise ``−a·b + b·log(b + 1e-5)`` (a = log p_S, b = p_T)
    averaged over B·C (``form = "exact"``, ``reduction = "batchmean"`` give the textbook KL).
    The clean and adversarial student passes run separately, as in the official loop.
    """

    Config = RSLADConfig
    requires_teacher = True

    def teacher_points(self):
        return (0.0,)

    def __call__(self, ctx):
        cfg = self.config
        target = ctx.teacher_logits(0.0)
        if cfg.detach_target:
            target = target.detach()
        nat = rslad_kl(ctx.student_logits(0.0), target, cfg)
        adv = rslad_kl(ctx.student_logits(1.0), target, cfg)
        ctx.log("rslad_adv", adv)
        ctx.log("rslad_nat", nat)
        return cfg.scale * (cfg.adv_weight(ctx.progress) * adv + cfg.nat_weight(ctx.progress) * nat)
