"""TRADES (Zhang et al., ICML 2019): its inner maximization (``trades_kl``) and its objective (``trades``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advdistill.interfaces import Objective
from advdistill.losses import kl_div
from advdistill_plugins.attacks.base import IterativeAttack, NormalStartConfig
from advdistill_plugins.methods.config import TRADESConfig


class TRADESInner(IterativeAttack):
    """TRADES inner max: ascend Σ KL(p_S(x) ‖ p_S(x')) from x + 0.001·N(0, 1) (start not clamped).

    As the official ``trades.py``: the target p_S(x) is the student on the clean batch in the
    attack's BN mode (eval by default), constant during the ascent; the KL is summed.
    """

    Config = NormalStartConfig

    def prepare(self, model, x, y, teacher, context):
        with torch.no_grad():
            return model(x).float()

    def loss(self, model, x_adv, y, prepared, teacher):
        return kl_div(prepared, model(x_adv).float(), reduction="sum")


class TRADES(Objective):
    """L = CE(f_S(x), y) + β·KL(p_S(x) ‖ p_S(x_adv)), the KL summed over classes and divided by B.

    As the official ``trades.py``: the clean branch is not detached, the KL is
    ``KLDivLoss(sum) / B`` (batchmean), β = 6. Pair it with the ``trades_kl`` attack.
    The clean and adversarial student passes run separately, as in the official loop.
    """

    Config = TRADESConfig

    def __call__(self, ctx):
        cfg = self.config
        clean = ctx.student_logits(0.0)
        adv = ctx.student_logits(1.0)
        natural = F.cross_entropy(clean, ctx.y)
        robust = kl_div(clean.detach() if cfg.detach_clean else clean, adv, reduction="batchmean")
        ctx.log("trades_natural", natural)
        ctx.log("trades_robust", robust)
        return natural + cfg.beta(ctx.progress) * robust
