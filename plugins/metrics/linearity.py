"""Local linearity: the share of the first-order Taylor remainder (the paper's Fig. 2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from advdistill.interfaces import Metric
from advdistill_plugins.metrics.common import uniform_perturbation
from advdistill_plugins.metrics.config import NORMALIZATIONS, LinearityConfig


def taylor_remainder(model: nn.Module, x: Tensor, eps: Tensor, *, normalization: str = "delta") -> Tensor:
    """Per-example remainder share ‖r‖₂ / ‖f(x+ε) − f(x)‖₂ with r = f(x+ε) − f(x) − J_f(x)ε; shape (B,).

    ``J_f(x)ε`` is one forward-mode Jacobian-vector product (:func:`torch.func.jvp`), which
    also yields f(x); f(x+ε) is a second forward. Norms are over the logits of each example.
    ``normalization``: ``"delta"`` divides by ‖f(x+ε) − f(x)‖₂ (default), ``"output"`` by
    ‖f(x+ε)‖₂, ``"none"`` returns ‖r‖₂ itself. The model should be in eval mode.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    x, eps = x.detach(), eps.detach()
    f_x, j_eps = torch.func.jvp(model, (x,), (eps,))
    with torch.no_grad():
        f_x_eps = model(x + eps)
    dtype = torch.promote_types(f_x.dtype, torch.float32)  # half-precision logits: norms in float32
    change = (f_x_eps - f_x).to(dtype)
    remainder = (change - j_eps.to(dtype)).flatten(1).norm(dim=1)
    if normalization == "none":
        return remainder
    scale = change if normalization == "delta" else f_x_eps.to(dtype)
    return remainder / scale.flatten(1).norm(dim=1).clamp_min(1e-12)


def mean_remainder(model: nn.Module, batches, cfg: LinearityConfig, generator: torch.Generator) -> float:
    """Mean of :func:`taylor_remainder` over ``batches`` of (x, y) and ``cfg.samples`` draws of ε."""
    total = torch.zeros((), dtype=torch.float64)
    count = 0
    for x, _ in batches:
        for _ in range(cfg.samples):
            eps = uniform_perturbation(x, cfg.eps, generator, clamp=cfg.clamp)
            ratio = taylor_remainder(model, x, eps, normalization=cfg.normalization)
            total += ratio.double().sum().cpu()
            count += ratio.shape[0]
    return total.item() / max(count, 1)


class Linearity(Metric):
    """Taylor remainder share: mean over images of ‖f(x+ε) − f(x) − J_f(x)ε‖₂ / ‖f(x+ε) − f(x)‖₂,
    ε ~ U[−8/255, 8/255], J_f(x)ε by forward-mode JVP → key ``linearity_remainder``."""

    mean_over_images = True

    Config = LinearityConfig

    def evaluate(self, ctx):
        generator = ctx.generator(stream=5)
        value = mean_remainder(ctx.model, ctx.batches(self.config.key), self.config, generator)
        return {self.config.key: value}
