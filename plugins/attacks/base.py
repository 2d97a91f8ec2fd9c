"""The iterative attack shared by every inner maximization: start, ascend, project.

A concrete attack only says which loss it ascends (:meth:`IterativeAttack.loss`) and, when
the loss needs them, what it precomputes once per batch (:meth:`IterativeAttack.prepare`).
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import Tensor, nn

from advdistill.interfaces import Attack
from advdistill.torch_utils import no_param_grad
from advdistill_plugins.attacks.config import IterativeConfig

# re-exported: the methods' inner maximizations and other plugins import it from here (docs/plugins.md)
from advdistill_plugins.attacks.config import NormalStartConfig as NormalStartConfig


def project(x_adv: Tensor, x: Tensor, eps: float, norm: str) -> Tensor:
    """Project ``x_adv`` onto the ``norm`` ball of radius ``eps`` around ``x`` (not onto [0, 1])."""
    delta = x_adv - x
    if norm == "linf":
        return x + delta.clamp(-eps, eps)
    flat = delta.flatten(1)
    if norm == "l2":
        norms = flat.norm(p=2, dim=1).clamp_min(1e-12)
        factor = (eps / norms).clamp(max=1.0)
        return x + (flat * factor[:, None]).view_as(delta)
    return x + project_l1(flat, eps).view_as(delta)


def project_l1(v: Tensor, eps: float) -> Tensor:
    """Euclidean projection of each row of ``v`` onto the L1 ball of radius ``eps`` (Duchi et al. 2008)."""
    abs_v = v.abs()
    inside = abs_v.sum(dim=1) <= eps
    mu, _ = abs_v.sort(dim=1, descending=True)
    cumsum = mu.cumsum(dim=1)
    ks = torch.arange(1, v.shape[1] + 1, device=v.device, dtype=v.dtype)
    cond = mu - (cumsum - eps) / ks > 0
    rho = cond.to(v.dtype).cumsum(dim=1).argmax(dim=1, keepdim=True)  # last index where cond holds
    theta = (cumsum.gather(1, rho) - eps) / (rho + 1).to(v.dtype)
    projected = v.sign() * (abs_v - theta).clamp_min(0)
    return torch.where(inside[:, None], v, projected)


def ascent_direction(grad: Tensor, norm: str, *, l1_sparsity: float = 0.95) -> Tensor:
    """The steepest-ascent step of unit size for ``norm`` (sign for Linf, normalised for L2/L1)."""
    if norm == "linf":
        return grad.sign()
    flat = grad.flatten(1)
    if norm == "l2":
        return (flat / flat.norm(p=2, dim=1, keepdim=True).clamp_min(1e-12)).view_as(grad)
    # L1: move only the coordinates with the largest |gradient| (sparse L1 descent, as in
    # Tramer & Boneh 2019 / torchattacks), normalised to unit L1 norm
    abs_flat = flat.abs()
    k = max(1, round((1 - l1_sparsity) * flat.shape[1]))
    threshold = abs_flat.topk(k, dim=1).values[:, -1:]
    sparse = flat.sign() * (abs_flat >= threshold)
    return (sparse / sparse.abs().sum(dim=1, keepdim=True).clamp_min(1e-12)).view_as(grad)


class IterativeAttack(Attack):
    """Start from a (random) point near ``x``, take ``steps`` ascent steps on :meth:`loss`."""

    Config = IterativeConfig

    def prepare(
        self, model: nn.Module, x: Tensor, y: Tensor, teacher: nn.Module | None, context: Any
    ) -> Any:
        """Per-batch constants the loss needs (e.g. soft targets); None by default."""
        return None

    @abc.abstractmethod
    def loss(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, prepared: Any, teacher: nn.Module | None
    ) -> Tensor:
        """The scalar to ascend at ``x_adv`` (summed over the batch, so each example ascends its own)."""

    def budget(self, context: Any) -> tuple[float, float]:
        """``(ε, step size)`` for this call: scaled down during the ε warm-up of training."""
        cfg = self.config
        progress = getattr(context, "progress", None)
        if cfg.warmup_epochs <= 0 or progress is None:
            return cfg.eps, cfg.step_size
        factor = min(1.0, progress.continuous_epoch / cfg.warmup_epochs)
        return cfg.eps * factor, cfg.step_size * factor

    def random_start(self, x: Tensor, generator: torch.Generator, eps: float | None = None) -> Tensor:
        cfg = self.config
        eps = cfg.eps if eps is None else eps
        if cfg.start == "none":
            return x.clone()
        if cfg.start == "normal":
            noise = cfg.start_std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        elif cfg.norm == "linf":
            uniform = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            noise = (uniform * 2 - 1) * eps
        else:  # a uniform direction scaled into the ball
            direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            noise = project(x + direction, x, eps, cfg.norm) - x
            noise = noise * torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator,
                                       device=x.device, dtype=x.dtype)
        start = x + noise
        return start.clamp(0.0, 1.0) if cfg.clamp_start else start

    def perturb(self, model, x, y, *, teacher=None, context=None, generator=None, x_start=None):
        """:param x_start: start the ascent here (projected into the ball and [0, 1]) instead of
            the configured random start, e.g. an adversarial example found at a smaller radius."""
        cfg = self.config
        if self.requires_teacher and teacher is None:
            raise ValueError(f"{type(self).__name__} needs a teacher model")
        if generator is None:
            generator = torch.Generator(device=x.device).manual_seed(cfg.seed)
        x = x.detach()
        eps, step_size = self.budget(context)
        with no_param_grad(model, teacher):
            prepared = self.prepare(model, x, y, teacher, context)
            if x_start is None:
                x_adv = self.random_start(x, generator, eps)
            else:
                x_adv = project(x_start.detach().to(x.dtype), x, eps, cfg.norm).clamp(0.0, 1.0)
            # gradients on for the whole loop (evaluation calls it under no_grad); the step itself
            # builds no graph: x_adv is detached and the gradient needs none
            with torch.enable_grad():
                for _ in range(cfg.steps):
                    x_adv.requires_grad_(True)
                    loss = self.loss(model, x_adv, y, prepared, teacher)
                    (grad,) = torch.autograd.grad(loss, [x_adv])
                    x_adv = x_adv.detach() + step_size * ascent_direction(grad, cfg.norm)
                    x_adv = project(x_adv, x, eps, cfg.norm).clamp(0.0, 1.0)
            if cfg.steps == 0:  # an unclamped random start must still honour the contract
                x_adv = project(x_adv, x, eps, cfg.norm).clamp(0.0, 1.0)
        return x_adv.detach()
