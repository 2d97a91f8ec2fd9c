"""PGD (Madry et al. 2018): ascend the student's cross-entropy."""

from __future__ import annotations

import torch.nn.functional as F

from advdistill_plugins.attacks.base import IterativeAttack
from advdistill_plugins.attacks.config import PGDConfig


class PGD(IterativeAttack):
    """PGD on CE(f(x'), y): uniform random start, ``steps`` signed-gradient steps of ``step_size``.

    Defaults are the paper's evaluation PGD (ε 8/255, step 2/255); ``norm`` = "l2"/"l1" gives
    the unseen-norm attacks (normalised / sparse-L1 steps, exact ball projections).
    """

    Config = PGDConfig

    def loss(self, model, x_adv, y, prepared, teacher):
        return F.cross_entropy(model(x_adv).float(), y, reduction=self.config.reduction)
