"""PGD-AT (Madry et al. 2018): its objective (``pgd_at``); the inner maximization is ``pgd``."""

from __future__ import annotations

import torch.nn.functional as F

from advdistill.interfaces import Objective


class PGDAT(Objective):
    """L = CE(f_S(x_adv), y), averaged over the batch. Takes no parameters."""

    def __call__(self, ctx):
        return F.cross_entropy(ctx.student_logits(1.0), ctx.y)
