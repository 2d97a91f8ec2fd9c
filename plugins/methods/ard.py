"""ARD (Goldblum et al., AAAI 2020): its objective (``ard``); its inner maximization is PGD on the student (``pgd``)."""

from __future__ import annotations

import torch.nn.functional as F

from advdistill.interfaces import Objective
from advdistill.losses import kl_div
from advdistill_plugins.methods.config import ARDConfig


class ARD(Objective):
    """L = α·τ²·KL(p_T(x)/τ ‖ p_S(x_adv)/τ) + (1 − α)·CE(f_S(x), y); the teacher sees the clean input.

    Official defaults: τ = 30, α = 1, KL reduced by PyTorch's default 'mean' (sum/(B·C)).
    The inner maximization is PGD on the student's CE in train mode (recipe:
    ``[train] attack_bn = "train"``). The clean student pass always runs, as in the official
    loop (it also updates the BatchNorm statistics), after the adversarial one.
    """

    Config = ARDConfig
    requires_teacher = True

    def teacher_points(self):
        return (0.0,)

    def __call__(self, ctx):
        cfg = self.config
        tau, alpha = cfg.temperature, cfg.alpha(ctx.progress)
        adv = ctx.student_logits(1.0)
        clean = ctx.student_logits(0.0)
        distill = tau**2 * kl_div(ctx.teacher_logits(0.0), adv, temperature=tau, reduction=cfg.reduction)
        natural = F.cross_entropy(clean, ctx.y)
        ctx.log("ard_kl", distill)
        ctx.log("ard_ce", natural)
        return alpha * distill + (1.0 - alpha) * natural
