"""AutoAttack's flags on the model itself: ``deterministic`` (no randomized defense), ``logits``
(outputs are not probabilities) and ``inference_gradients`` (no gradient computation in the
forward pass, as dynamic defenses do)."""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import Tensor

from advdistill.evaluation.checks.base import CheckInputs, CheckResult, flagged, passed
from advdistill.evaluation.context import EvalContext

# AutoAttack's tolerance for "these outputs are a probability distribution"
PROBABILITY_TOL = 1e-5


def _logits(ctx: EvalContext) -> Tensor:
    with torch.no_grad():
        return torch.cat([ctx.model(x).float() for x, _ in ctx.batches()]).cpu()


def _unit_rows(logits: Tensor) -> Tensor:
    return logits / (logits.norm(dim=1, keepdim=True) + 1e-10)


def check_deterministic(inputs: CheckInputs) -> CheckResult:
    """``repeats`` forward passes of the first n images in eval mode: flagged when a prediction
    changes or the logits (each row scaled to unit L2 norm) differ by more than ``determinism_tol``
    (AutoAttack's randomized-defense test, tolerance 1e-4)."""
    cfg = inputs.config
    sub = inputs.subset()
    passes = [_logits(sub) for _ in range(cfg.repeats)]
    first = passes[0]
    changed = torch.zeros(first.shape[0], dtype=torch.bool)
    max_diff = 0.0
    for other in passes[1:]:
        changed |= other.argmax(1) != first.argmax(1)
        max_diff = max(max_diff, float((_unit_rows(other) - _unit_rows(first)).norm(dim=1).max()))
    values = {"n": sub.n_examples, "repeats": cfg.repeats, "changed_predictions": int(changed.sum()),
              "max_logit_difference": max_diff, "tolerance": cfg.determinism_tol}
    text = (f"{cfg.repeats} forward passes of the first {sub.n_examples} images: {int(changed.sum())} "
            f"prediction(s) changed, largest difference of normalized logits {max_diff:.2g}")
    if changed.any() or max_diff > cfg.determinism_tol:
        return flagged(f"{text} (> {cfg.determinism_tol:g}): the model is randomized in eval mode; fixed-sample "
                       "attacks overestimate its robustness (use AutoAttack's version = \"rand\", with EoT)", **values)
    return passed(text, **values)


def check_logits(inputs: CheckInputs) -> CheckResult:
    """Flagged when the outputs on the first n images look like probabilities (all in [0, 1] and each
    row summing to 1, within 1e-5; AutoAttack's test): the attacks' losses expect logits."""
    sub = inputs.subset()
    out = _logits(sub)
    lowest, highest = float(out.min()), float(out.max())
    row_error = float((out.sum(dim=1) - 1).abs().max())
    values = {"n": sub.n_examples, "min": lowest, "max": highest, "max_row_sum_error": row_error}
    if highest < 1 + PROBABILITY_TOL and lowest > -PROBABILITY_TOL and row_error < PROBABILITY_TOL:
        return flagged(f"the outputs on the first {sub.n_examples} images are in [{lowest:.3g}, {highest:.3g}] and "
                       f"each row sums to 1: the model returns probabilities, not logits; cross-entropy on them "
                       "has tiny gradients (remove the final softmax)", **values)
    return passed(f"outputs in [{lowest:.3g}, {highest:.3g}] on the first {sub.n_examples} images: logits, not "
                  "probabilities", **values)


def _gradient_functions() -> dict[Any, str]:
    """The code objects of torch's gradient entry points, by name."""
    found = {torch.autograd.grad: "torch.autograd.grad", torch.autograd.backward: "torch.autograd.backward",
             torch.Tensor.backward: "Tensor.backward"}
    return {getattr(fn, "__code__", None): name for fn, name in found.items() if hasattr(fn, "__code__")}


def check_inference_gradients(inputs: CheckInputs) -> CheckResult:
    """One forward pass of two images, watching for calls of ``torch.autograd.grad``,
    ``torch.autograd.backward`` or ``Tensor.backward``: flagged when the model computes gradients
    while predicting (optimization at inference time, as dynamic defenses do; AutoAttack's test)."""
    x, _ = next(iter(inputs.subset().batches()))
    watched = _gradient_functions()
    calls: dict[str, int] = {}

    def profile(frame: Any, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code in watched:
            name = watched[frame.f_code]
            calls[name] = calls.get(name, 0) + 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        inputs.ctx.model(x[:2])
    finally:
        sys.setprofile(previous)
    values = {"calls": calls}
    if calls:
        listed = ", ".join(f"{name} ×{count}" for name, count in calls.items())
        return flagged(f"the forward pass computes gradients ({listed}): a dynamic defense; standard attacks "
                       "(and AutoAttack) may be insufficient, design an adaptive attack", **values)
    return passed("the forward pass computes no gradients", **values)
