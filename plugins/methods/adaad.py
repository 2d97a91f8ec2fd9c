"""AdaAD (Huang et al., CVPR 2023): its inner maximization (``adaad_kl``) and its objective (``adaad``)."""

from __future__ import annotations

from advdistill.interfaces import Objective
from advdistill.losses import kl_div
from advdistill_plugins.attacks.base import IterativeAttack, NormalStartConfig
from advdistill_plugins.methods.config import AdaADConfig


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


class AdaAD(Objective):
    """L = α·KL(p_T(x_adv) ‖ p_S(x_adv)) + (1 − α)·KL(p_T(x) ‖ p_S(x)); teacher outputs detached.

    Pair it with the ``adaad_kl`` attack (teacher in the inner loop); with ``pgd`` instead it is
    the "w/o T_in" variant of the IGDM paper. The clean student pass always runs before the
    adversarial one, as in the official loop; the teacher's clean pass only when α is not the
    constant 1 (its term would be multiplied by 0).
    """

    Config = AdaADConfig
    requires_teacher = True

    def _uses_clean_teacher(self) -> bool:
        alpha = self.config.alpha
        return not (alpha.is_constant and alpha.params["value"] == 1.0)

    def teacher_points(self):
        return (0.0, 1.0) if self._uses_clean_teacher() else (1.0,)

    def __call__(self, ctx):
        cfg = self.config
        clean = ctx.student_logits(0.0)
        adv = ctx.student_logits(1.0)
        loss = kl_div(ctx.teacher_logits(1.0), adv, reduction=cfg.reduction)
        ctx.log("adaad_adv", loss)
        if self._uses_clean_teacher():
            alpha = cfg.alpha(ctx.progress)
            natural = kl_div(ctx.teacher_logits(0.0), clean, reduction=cfg.reduction)
            ctx.log("adaad_nat", natural)
            loss = alpha * loss + (1.0 - alpha) * natural
        return loss
