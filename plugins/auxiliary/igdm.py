"""Indirect Gradient Distillation Module (Lee, Cho & Kim, ICLR 2025; arXiv:2312.03286), Eq. 8."""

from __future__ import annotations

import torch.nn.functional as F

from advdistill.interfaces import AuxLoss
from advdistill.losses import kl_div
from advdistill_plugins.auxiliary.config import IGDMConfig


def igdm_distance(delta_s, delta_t, distance: str, temperature: float = 1.0):
    """D(ΔS, ΔT) of Eq. 8 on logit differences ΔS, ΔT of shape (B, C)."""
    if distance == "kl":
        return kl_div(delta_t, delta_s, temperature=temperature, reduction="batchmean")
    if distance == "l1":
        return F.l1_loss(delta_s, delta_t)
    return F.mse_loss(delta_s, delta_t)


class IGDM(AuxLoss):
    """L_IGDM = T(α)·D(f_S(x+βδ) − f_S(x−γδ), f_T(x+βδ) − f_T(x−γδ)), δ = x_adv − x.

    As the official code: δ comes from the base method's inner maximization (detached);
    x ± δ are not clamped to [0, 1]; the teacher runs without gradients; D defaults to KL on
    the softmax of the logit differences (batchmean, τ = 1). Each student point is its own
    forward (train-mode BatchNorm statistics must not mix them, as in the official code); the
    two teacher points go through one batched forward (eval mode); with β = 1 the point
    x + βδ is x_adv itself, so the base method's forward of it is reused.
    """

    Config = IGDMConfig
    requires_teacher = True

    def teacher_points(self):
        return (self.config.beta, -self.config.gamma)

    def __call__(self, ctx):
        cfg = self.config
        s_plus, s_minus = ctx.student_logits(cfg.beta, -cfg.gamma)
        t_plus, t_minus = ctx.teacher_logits(cfg.beta, -cfg.gamma)
        distance = igdm_distance(s_plus - s_minus, t_plus - t_minus, cfg.distance, cfg.temperature)
        ctx.log("igdm_distance", distance)
        return cfg.alpha(ctx.progress) * distance
