"""Adversarial weight perturbation (AWP; Wu, Xia and Wang, NeurIPS 2020), for any objective.

"Adversarial Weight Perturbation Helps Robust Generalization" trains at weights perturbed, layer
by layer, in the direction that raises the training loss on the adversarial examples; the
official code (github.com/csdongxian/AWP, ``AdvWeightPerturb``) does, in each step::

    x_adv = attack(w)                                     # unchanged by AWP
    g_l   = ∇_{w_l} L(w; x_adv)                           # calc_awp: one SGD step of a proxy on −L
    v_l   = ‖w_l‖ · g_l / ‖g_l‖                           # diff_in_weights: conv/linear weights only
    w    ← w + γ·v                                        # perturb
    w    ← w − lr · ∇L(w + γ·v)   (the optimizer's step)
    w    ← w − γ·v                                        # restore

``diff_in_weights`` skips 1-D tensors (biases, BatchNorm) and keeps tensors named ``weight``;
the proxy's forward runs in train mode, and its BatchNorm statistics are thrown away with it.
Here the gradient is taken on the student itself (``TrainStep.loss``, whose forward leaves the
running statistics as they were) instead of a proxy copy: the same direction, without a second
model in memory. The official ``L`` is the method's own loss (cross-entropy for PGD-AT, TRADES'
loss for TRADES-AWP); with distillation it is the recipe's objective (RSLAD's, ARD's, ...), and
with ``loss = "total"`` the objective plus the aux losses (e.g. IGDM).
"""

from __future__ import annotations

from typing import Any

import torch

from advdistill.interfaces import StepExtension
from advdistill_plugins.step_extensions.config import AWPConfig

#: added to ‖g‖ as in the official code (a zero gradient gives a zero perturbation)
EPS = 1e-20


def perturbed_weights(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """The parameters AWP perturbs: trainable tensors of ≥ 2 dimensions named ``weight`` (conv, linear)."""
    return [(name, p) for name, p in model.named_parameters()
            if p.requires_grad and p.dim() > 1 and "weight" in name]


class AWP(StepExtension):
    """Adversarial weight perturbation (Wu et al. 2020): the update is computed at weights moved by
    γ·‖w_l‖·g_l/‖g_l‖ per layer (g: the loss's gradient at x_adv), then the move is undone."""

    Config = AWPConfig

    def __init__(self, config: AWPConfig | None = None) -> None:
        super().__init__(config or AWPConfig())
        #: (parameter, γ·v) of the step in progress; None between steps
        self._applied: list[tuple[torch.nn.Parameter, torch.Tensor]] | None = None

    def before_loss(self, step: Any) -> None:
        cfg = self.config
        self._applied = None
        if step.ctx.progress.epoch < cfg.start_epoch:
            return
        params = [p for _, p in perturbed_weights(step.model)]
        loss = step.loss(aux=cfg.loss == "total")
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        applied = []
        with torch.no_grad():
            for p, g in zip(params, grads):
                if g is None:  # the loss does not depend on it: no direction
                    continue
                # device arithmetic only: the step waits for nothing on the host
                offset = g * (cfg.gamma * torch.linalg.vector_norm(p) / (torch.linalg.vector_norm(g) + EPS))
                p.add_(offset)
                applied.append((p, offset))
        self._applied = applied

    def after_update(self, step: Any) -> None:
        if self._applied is None:
            return
        with torch.no_grad():
            for p, offset in self._applied:
                p.sub_(offset)
        self._applied = None
