"""Tiny models for the sanity-check tests: a healthy linear classifier, and broken variants of it
(rounded input: zero gradients; dropout in eval mode: randomized; softmax output; a forward pass
that computes gradients), with labels equal to the healthy model's clean predictions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import advdistill as ad
from advdistill.config import config_to_dict
from advdistill.evaluation.checks.base import CheckInputs, robust_results
from advdistill.evaluation.context import EvalContext
from advdistill.evaluation.runner import run_metrics
from advdistill.recipe.schema import ChecksConfig

CPU = torch.device("cpu")
N_IMAGES, CLASSES, SIDE = 48, 4, 8


class Linear(nn.Module):
    """logits = W·flatten(x) + b: every gradient-based attack works on it."""

    def __init__(self, seed: int = 0, scale: float = 1.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(CLASSES, SIDE * SIDE, generator=g) * scale)
        self.bias = nn.Parameter(torch.zeros(CLASSES))

    def logits(self, x):
        return x.flatten(1) @ self.weight.T + self.bias

    def forward(self, x):
        return self.logits(x)


class Rounded(Linear):
    """The linear model on the input rounded to quarters: the input gradient is exactly zero."""

    def forward(self, x):
        return self.logits(torch.round(x * 4) / 4)


class Dropout(Linear):
    """Dropout that stays on in eval mode: a randomized model."""

    def forward(self, x):
        return self.logits(F.dropout(x, p=0.5, training=True))


class Softmax(Linear):
    """Returns probabilities instead of logits."""

    def forward(self, x):
        return self.logits(x).softmax(dim=1)


class Purifying(Linear):
    """Takes one gradient step on its input before classifying (an inference-time optimization)."""

    def forward(self, x):
        with torch.enable_grad():
            z = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.logits(z).logsumexp(dim=1).sum(), [z])
        return self.logits(x - 0.01 * grad.sign())


def make_data():
    """48 random 8x8 images, labelled with the healthy model's predictions."""
    g = torch.Generator().manual_seed(1)
    images = (torch.rand(N_IMAGES, 1, SIDE, SIDE, generator=g) * 255).to(torch.uint8)
    with torch.no_grad():
        labels = Linear()(images.float() / 255).argmax(1)  # the healthy model is right on every image
    return images, labels


def make_inputs(model, data, metrics=None, teacher=None, **config) -> CheckInputs:
    """Run ``metrics`` (default: clean and PGD-10, Linf 8/255) on ``model`` and wrap what the checks read."""
    images, labels = data
    if metrics is None:
        metrics = {"clean": ad.build("metric", "clean"), "pgd": ad.build("metric", "pgd", steps=10)}
    records, threats = {}, {}
    values, errors, _ = run_metrics(model, images, labels, metrics, device=CPU, batch_size=16, records=records,
                                    threats=threats, show_progress=False)
    assert errors == {}
    ctx = EvalContext(model=model, images=images, labels=labels, device=CPU, batch_size=16, teacher=teacher,
                      show_progress=False)
    return CheckInputs(ctx=ctx, metrics=metrics, values=values, records=records, config=ChecksConfig(**config),
                       robust=robust_results(metrics, values, records, threats), threats=threats)


def declared_threats(metrics, values) -> dict:
    """What the PGD/AutoAttack metrics and an eps_curve of ``values`` would declare (``ctx.describe``)
    without running them: each metric's threat model, each curve point Linf at its ε."""
    threats = {}
    for metric in metrics.values():
        kind = "autoattack" if type(metric).__name__ == "AutoAttackMetric" else "pgd"
        if getattr(metric, "key", None) in values and hasattr(metric, "threat"):
            settings = config_to_dict(metric.attack().config) if kind == "pgd" else None
            threats[metric.key] = {**metric.threat().to_json(), "attack": kind, "settings": settings}
    for point in values.get("eps_curve") or []:
        for name in point:
            if name != "eps":
                attack = "autoattack" if name == "autoattack" else "pgd"
                threats[f"eps_curve@{point['eps']:.6g}/{name}"] = {"norm": "linf", "eps": point["eps"],
                                                                    "source": "metric", "attack": attack}
    return threats
