"""Input-gradient alignment between teacher and student (the paper's GD and GC)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advdistill.interfaces import Metric


def input_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇_x CE(f(x), y) for every example, in one backward (the per-example losses are summed,
    and each example's loss depends only on its own input in eval mode)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x).float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, [x])
    return grad.flatten(1)


class GradAlignment(Metric):
    """GD = mean_x ‖g_T − g_S‖₂ and GC = mean_x cos(g_T, g_S), g_M = ∇_x CE(f_M(x), y) on clean inputs."""

    requires_teacher = True

    def evaluate(self, ctx):
        dist = torch.zeros((), dtype=torch.float64, device=ctx.device)
        cos = torch.zeros((), dtype=torch.float64, device=ctx.device)
        for x, y in ctx.batches("GD/GC"):
            g_s = input_gradients(ctx.model, x, y)
            g_t = input_gradients(ctx.teacher, x, y)
            dist += (g_t - g_s).norm(dim=1).double().sum()
            cos += F.cosine_similarity(g_t, g_s, dim=1, eps=1e-12).double().sum()
        return {"gd": dist.item() / ctx.n_examples, "gc": cos.item() / ctx.n_examples}
