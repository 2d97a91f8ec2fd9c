"""IAD (Zhu et al., ICLR 2022), forms IAD-I and IAD-II: its objective (``iad``); the inner maximization is ``pgd``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from advdistill.interfaces import Objective
from advdistill.losses import kl_div, weighted_kl_div
from advdistill_plugins.methods.config import IADConfig


def introspection_weights(teacher_adv_logits: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """A_i = p_T(y_i | x_adv_i)^β (B,), a constant (detached) as in the official code."""
    return F.softmax(teacher_adv_logits.detach(), dim=1).gather(1, y[:, None]).squeeze(1).pow(beta)


class IAD(Objective):
    """IAD: the student trusts the teacher on x_adv by A_i = p_T(y_i|x_adv_i)^β and itself by 1 − A_i.

    IAD-I (``form = "I"``, official ``IAD-I.py``; a = 1, τ = 1, β = 0.1, begin = 60)::

        L = a·τ²·KL(p_T(x)/τ ‖ p_S(x_adv)/τ) + a·(1/B)Σ_i (1 − A_i)·KL(p_S(x)_i ‖ p_S(x_adv)_i)
            + (1 − a)·CE(f_S(x), y)

    IAD-II (``form = "II"``, official ``IAD-II.py``; a = 0.5, a2 = 0.25, begin = 40)::

        L = (1 − a − a2)·CE(f_S(x_adv), y)
            + a·τ²·[(1/B)Σ_i A_i·KL(p_T(x_adv)/τ ‖ p_S(x_adv)/τ) + (1/B)Σ_i (1 − A_i)·KL(p_S(x) ‖ p_S(x_adv))]
            + a2·τ²·KL(p_Tst(x_adv)/τ ‖ p_S(x_adv)/τ)          (batchmean; Tst = standard_teacher)

    Before ``begin`` epochs are completed A_i = 1 (plain ARD-style distillation). As in the
    official code p_S(x) in the self-introspection KL is not detached and that KL has no
    temperature.
    Our epochs count from 1, so introspection is on when ``epoch − 1 >= begin``. The inner
    maximization is PGD on the student's CE in train mode (``[train] attack_bn = "train"``).
    """

    Config = IADConfig
    requires_teacher = True

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._standard_teacher: torch.nn.Module | None = None

    def teacher_points(self):
        return (0.0, 1.0) if self.config.form == "I" else (1.0,)

    def introspecting(self, progress) -> bool:
        """Whether the self-introspection term is on: ``begin`` epochs (counted from 0) completed."""
        return progress.epoch - 1 >= self.config.begin

    def standard_teacher(self, ctx) -> torch.nn.Module:
        """IAD-II's standard teacher, loaded through its teacher plugin on first use, frozen."""
        if self._standard_teacher is None:
            from advdistill.components import build_from_table
            from advdistill.torch_utils import freeze

            loader = build_from_table("teacher", self.config.standard_teacher)
            num_classes = ctx.teacher_logits(1.0).shape[1]  # cached; never a student forward here
            model = loader.load(num_classes=num_classes, in_chans=ctx.x.shape[1])
            self._standard_teacher = freeze(model).to(ctx.x.device)
        return self._standard_teacher

    def __call__(self, ctx):
        cfg = self.config
        return self._iad_one(ctx) if cfg.form == "I" else self._iad_two(ctx)

    def _iad_one(self, ctx):
        cfg = self.config
        tau, a = cfg.temperature, cfg.alpha(ctx.progress)
        adv = ctx.student_logits(1.0)
        clean = ctx.student_logits(0.0)
        t_clean, t_adv = ctx.teacher_logits(0.0, 1.0)
        distill = tau**2 * kl_div(t_clean, adv, temperature=tau, reduction="batchmean")
        loss = a * distill + (1.0 - a) * F.cross_entropy(clean, ctx.y)
        ctx.log("iad_kl", distill)
        if self.introspecting(ctx.progress):
            trust = introspection_weights(t_adv, ctx.y, cfg.beta)
            introspection = weighted_kl_div(clean, adv, 1.0 - trust)
            ctx.log("iad_introspection", introspection)
            loss = loss + a * introspection
        return loss

    def _iad_two(self, ctx):
        cfg = self.config
        tau, a, a2 = cfg.temperature, cfg.alpha(ctx.progress), cfg.alpha2(ctx.progress)
        adv = ctx.student_logits(1.0)
        t_adv = ctx.teacher_logits(1.0)
        with torch.no_grad():
            t_standard = self.standard_teacher(ctx)(ctx.x_adv).float()
        introspecting = self.introspecting(ctx.progress)
        if introspecting:
            trust = introspection_weights(t_adv, ctx.y, cfg.beta)
        else:
            trust = torch.ones_like(adv[:, 0])
        robust = weighted_kl_div(t_adv, adv, trust, temperature=tau)
        if introspecting:
            robust = robust + weighted_kl_div(ctx.student_logits(0.0), adv, 1.0 - trust)
        standard = kl_div(t_standard, adv, temperature=tau, reduction="batchmean")
        ctx.log("iad_robust", robust)
        ctx.log("iad_standard", standard)
        return (1.0 - a - a2) * F.cross_entropy(adv, ctx.y) + tau**2 * (a * robust + a2 * standard)
