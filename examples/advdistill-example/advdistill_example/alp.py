"""Adversarial logit pairing (Kannan, Kurakin & Goodfellow, 2018) as an advdistill aux loss."""

from __future__ import annotations

from attrs import define

from advdistill.config import ScheduledValue, scheduled
from advdistill.interfaces import AuxLoss


@define(frozen=True, kw_only=True)
class ALPConfig:
    #: λ; a number or a schedule table such as {kind = "linear", end = 0.5}
    weight: ScheduledValue = scheduled(0.5, low=0.0)


class LogitPairing(AuxLoss):
    """λ · mean over batch and classes of (f_S(x_adv) − f_S(x))²; needs no teacher."""

    Config = ALPConfig

    def __call__(self, ctx):
        adv, clean = ctx.student_logits(1.0), ctx.student_logits(0.0)
        return self.config.weight(ctx.progress) * (adv - clean).pow(2).mean()
