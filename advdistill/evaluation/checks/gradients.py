"""Check ``zero_gradient``: how many images give the attacks nothing to follow."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from advdistill.evaluation.checks.base import CheckInputs, CheckResult, flagged, passed
from advdistill.evaluation.context import EvalContext


def input_gradient_l1(ctx: EvalContext) -> Tensor:
    """Per image of ``ctx``: ‖∇ₓ CE(f(x), y)‖₁ at the clean image (float64 (N,), on the CPU).

    One backward of the batch's summed loss gives every image's own gradient (eval mode: an
    image's loss depends on its own input only)."""
    norms = []
    for x, y in ctx.batches():
        x = x.clone().requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(ctx.model(x).float(), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, [x])
        norms.append(grad.flatten(1).double().abs().sum(dim=1).cpu())
    return torch.cat(norms)


def check_zero_gradient(inputs: CheckInputs) -> CheckResult:
    """The share of the first n images whose input gradient of the CE loss at the clean image has
    L1 norm ≤ ``zero_grad_tol`` (0: exactly zero, AutoAttack's test): flagged above
    ``zero_grad_max_share`` %. Zero gradients stop gradient-based attacks (masked gradients:
    rounding or other non-differentiable layers, flat regions, saturated softmax)."""
    cfg = inputs.config
    norms = input_gradient_l1(inputs.subset())
    zero = norms <= cfg.zero_grad_tol
    count, n = int(zero.sum()), int(norms.numel())
    share = 100.0 * count / n
    exactly = int((norms == 0).sum())
    values = {"n": n, "zero": count, "exactly_zero": exactly, "share": share, "tolerance": cfg.zero_grad_tol,
              "max_share": cfg.zero_grad_max_share, "median_l1": float(norms.median())}
    what = "exactly zero" if cfg.zero_grad_tol == 0 else f"L1 norm ≤ {cfg.zero_grad_tol:g}"
    text = (f"{count} of the first {n} images ({share:.2f} %) have an input gradient of the CE loss {what} "
            f"(median L1 norm {values['median_l1']:.3g})")
    if share > cfg.zero_grad_max_share:
        return flagged(f"{text}, above {cfg.zero_grad_max_share:g} %: gradient-based attacks cannot move these "
                       "images; their robust accuracy is not evidence of robustness (use a black-box or "
                       "margin-loss attack, or BPDA for non-differentiable layers)", **values)
    return passed(f"{text} (≤ {cfg.zero_grad_max_share:g} %)", **values)
