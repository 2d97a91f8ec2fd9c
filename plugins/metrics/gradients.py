"""Input-gradient alignment between teacher and student (the paper's GD and GC)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advdistill.interfaces import Metric
from advdistill.losses import input_gradient


class GradAlignment(Metric):
    """GD = mean_x ‖g_T − g_S‖₂ and GC = mean_x cos(g_T, g_S), g_M = ∇_x CE(f_M(x), y) on clean inputs.

    Each model's input gradients come from one batched backward per batch; norms and cosines
    are over all pixels of an image. Keys ``gd`` (lower is better) and ``gc`` (higher is better).
    """

    mean_over_images = True

    requires_teacher = True

    def evaluate(self, ctx):
        dist = torch.zeros((), dtype=torch.float64, device=ctx.device)
        cos = torch.zeros((), dtype=torch.float64, device=ctx.device)
        for x, y in ctx.batches("GD/GC"):
            g_s = input_gradient(ctx.model, x, y).flatten(1)
            g_t = input_gradient(ctx.teacher, x, y).flatten(1)
            dist += (g_t - g_s).norm(dim=1).double().sum()
            cos += F.cosine_similarity(g_t, g_s, dim=1, eps=1e-12).double().sum()
        return {"gd": dist.item() / ctx.n_examples, "gc": cos.item() / ctx.n_examples}
