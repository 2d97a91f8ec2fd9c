"""MART (Wang et al., ICLR 2020): its inner maximization (``mart``) and its objective (``mart``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advdistill.interfaces import Objective
from advdistill.losses import weighted_kl_div
from advdistill_plugins.attacks.base import IterativeAttack, NormalStartConfig
from advdistill_plugins.methods.config import MARTConfig


class MARTInner(IterativeAttack):
    """MART inner max: PGD on CE(f_S(x'), y) from x + 0.001·N(0, 1) (start not clamped).

    As the official ``mart.py``; it averages the CE over the batch, which gives the same
    signed steps as the sum used here (sign(∇ mean) = sign(∇ sum)).
    """

    Config = NormalStartConfig

    def loss(self, model, x_adv, y, prepared, teacher):
        return F.cross_entropy(model(x_adv).float(), y, reduction="sum")


def strongest_wrong_class(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """argmax_{k ≠ y_i} probs[i, k] for each row (B,)."""
    masked = probs.scatter(1, y[:, None], float("-inf"))
    return masked.argmax(dim=1)


class MART(Objective):
    """L = BCE(f_S(x_adv), y) + β·(1/B)·Σ_i KL(p_S(x)_i ‖ p_S(x_adv)_i)·(1 − p_S(x)_{i,y_i}).

    BCE = CE(f_S(x_adv), y) − mean_i log(1 − max_{k≠y} p_S(x_adv)_{i,k}). Nothing is detached,
    as in the official code; ``form = "official"`` (default) keeps its numerical constants
    (see the config), ``"exact"`` is the paper's formula. Pair it with the ``mart`` attack.
    """

    Config = MARTConfig

    def __call__(self, ctx):
        cfg = self.config
        official = cfg.form == "official"
        clean = ctx.student_logits(0.0)
        adv = ctx.student_logits(1.0)
        p_adv = F.softmax(adv, dim=1)
        p_wrong = p_adv.gather(1, strongest_wrong_class(p_adv.detach(), ctx.y)[:, None]).squeeze(1)
        margin = -torch.log(1.0001 - p_wrong + 1e-12) if official else -torch.log1p(-p_wrong)
        bce = F.cross_entropy(adv, ctx.y) + margin.mean()
        p_true = F.softmax(clean, dim=1).gather(1, ctx.y[:, None]).squeeze(1)
        weights = (1.0000001 if official else 1.0) - p_true
        robust = weighted_kl_div(clean, adv, weights, input_eps=1e-12 if official else 0.0)
        ctx.log("mart_bce", bce)
        ctx.log("mart_robust", robust)
        return bce + cfg.beta(ctx.progress) * robust
