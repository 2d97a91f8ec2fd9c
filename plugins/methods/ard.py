"""ARD (Goldblum et al., AAAI 2020): its objective (``ard``); its inner maximization is PGD on the student (``pgd``)."""

from __future__ import annotations

import torch.nn.functional as F
from attrs import define, field

from advdistill.config import ScheduledValue, as_float, in_range, one_of, scheduled
from advdistill.interfaces import Objective
from advdistill.losses import kl_div


@define(frozen=True, kw_only=True)
class ARDConfig:
    #: distillation temperature τ (official default 30; the IGDM copy of ARD uses 1)
    temperature: float = field(default=30.0, converter=as_float, validator=in_range(0.0, low_open=True))
    #: α: weight of the KL term, 1 − α of the clean CE (official default 1: CE off)
    alpha: ScheduledValue = scheduled(1.0, low=0.0, high=1.0)
    #: "mean": KLDivLoss's default sum/(B·C), official ARD; "batchmean": sum/B (IAD's, IGDM's copies)
    reduction: str = field(default="mean", validator=one_of("mean", "batchmean"))


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
