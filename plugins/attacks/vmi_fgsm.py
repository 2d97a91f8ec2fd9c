"""VMI-FGSM (Wang & He, CVPR 2021): the transfer attack of the paper's Table 6."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from advdistill.interfaces import Attack
from advdistill.losses import input_gradient
from advdistill.torch_utils import no_param_grad
from advdistill_plugins.attacks.config import VMIFGSMConfig


class VMIFGSM(Attack):
    """Variance-tuned momentum iterative FGSM (Linf): crafted for transfer to other models.

    Per step t, with g = ∇_x CE at x_adv and v the variance term of the previous step::

        m ← μ·m + (g + v) / mean|g + v|        (mean over each example's pixels)
        v ← mean_k ∇CE(x_adv + u_k) − g,  u_k ~ U[−β·ε, β·ε]^d, k = 1..N
        x_adv ← clip_{x,ε}(x_adv + α·sign(m)) ∩ [0, 1]

    starting from x_adv = x, m = v = 0; α = ε / steps (official code). Neighbours are not
    clamped to [0, 1] (as the official and torchattacks codes).
    """

    Config = VMIFGSMConfig

    def neighbors(self, x_adv: Tensor, generator: torch.Generator) -> Tensor:
        """The N neighbours of ``x_adv``: shape (N, B, C, H, W)."""
        cfg = self.config
        shape = (cfg.n_neighbors, *x_adv.shape)
        noise = torch.rand(shape, generator=generator, device=x_adv.device, dtype=x_adv.dtype) * 2 - 1
        return x_adv.unsqueeze(0) + noise * (cfg.beta * cfg.eps)

    def _neighbor_gradient(self, model: nn.Module, points: Tensor, y: Tensor) -> Tensor:
        chunk = self.config.neighbors_per_pass or points.shape[0]
        total = torch.zeros_like(points[0])
        for part in points.split(chunk):
            k = part.shape[0]
            grads = input_gradient(model, part.flatten(0, 1), y.repeat(k))
            total += grads.view_as(part).sum(0)
        return total / points.shape[0]

    def perturb(self, model, x, y, *, teacher=None, context=None, generator=None):
        cfg = self.config
        if generator is None:
            generator = torch.Generator(device=x.device).manual_seed(cfg.seed)
        step = cfg.step_size if cfg.step_size is not None else cfg.eps / cfg.steps
        x = x.detach()
        x_adv = x.clone()
        momentum = torch.zeros_like(x)
        variance = torch.zeros_like(x)
        with no_param_grad(model):
            for _ in range(cfg.steps):
                grad = input_gradient(model, x_adv, y)
                current = grad + variance
                scale = current.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))
                momentum = cfg.decay * momentum + current / scale
                variance = self._neighbor_gradient(model, self.neighbors(x_adv, generator), y) - grad
                x_adv = x_adv + step * momentum.sign()
                x_adv = torch.min(torch.max(x_adv, x - cfg.eps), x + cfg.eps).clamp(0.0, 1.0)
        return x_adv.detach()
