"""Inner maximizations of the adversarial-training baselines that need no teacher: TRADES, MART."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advdistill.losses import kl_div
from advdistill_plugins.attacks.base import IterativeAttack, NormalStartConfig


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


class MARTInner(IterativeAttack):
    """MART inner max: PGD on CE(f_S(x'), y) from x + 0.001·N(0, 1) (start not clamped).

    As the official ``mart.py``; it averages the CE over the batch, which gives the same
    signed steps as the sum used here (sign(∇ mean) = sign(∇ sum)).
    """

    Config = NormalStartConfig

    def loss(self, model, x_adv, y, prepared, teacher):
        return F.cross_entropy(model(x_adv).float(), y, reduction="sum")
