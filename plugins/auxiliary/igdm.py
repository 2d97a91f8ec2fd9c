"""Indirect Gradient Distillation Module (Lee, Cho & Kim, ICLR 2025; arXiv:2312.03286), Eq. 8."""

from __future__ import annotations

import torch.nn.functional as F
from attrs import define, field

from advdistill.config import ScheduledValue, as_float, in_range, one_of, scheduled
from advdistill.interfaces import AuxLoss
from advdistill.losses import kl_div


@define(frozen=True, kw_only=True)
class IGDMConfig:
    #: T(α): the weight, a schedule; default α·epoch/E with α = 20 (epoch counted from 1)
    alpha: ScheduledValue = scheduled({"kind": "linear", "start": 0.0, "end": 20.0}, low=0.0)
    #: β: the first point is x + β·δ (β = 1 reuses the base method's forwards of x_adv)
    beta: float = field(default=1.0, converter=as_float, validator=in_range(0.0))
    #: γ: the second point is x − γ·δ
    gamma: float = field(default=1.0, converter=as_float, validator=in_range(0.0))
    #: D: "kl" = KL(softmax(ΔT/τ) ‖ softmax(ΔS/τ)) batchmean; "l1"/"l2" = mean |·| / mean (·)² of ΔS − ΔT
    distance: str = field(default="kl", validator=one_of("kl", "l1", "l2"))
    #: τ of the "kl" distance
    temperature: float = field(default=1.0, converter=as_float, validator=in_range(0.0, low_open=True))


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
