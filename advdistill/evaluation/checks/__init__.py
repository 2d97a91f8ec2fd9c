"""Evaluation sanity checks: the checklist of Carlini et al., "On Evaluating Adversarial Robustness"
(2019), and AutoAttack's flags, run after the metrics of every evaluation (docs/metrics.md).

Each check is one function ``check_<name>(inputs) -> CheckResult`` (passed, flagged with its
numbers, or not run with the reason). :func:`run_checks` runs those ``[eval.checks]`` selects and
returns report.json's ``checks``: ``{"n", "flagged", "seconds", "results": {name: {...}}}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from advdistill.evaluation.checks.attacks import check_black_box, check_more_steps, check_unbounded
from advdistill.evaluation.checks.base import FLAGGED, NOT_RUN, CheckInputs, CheckResult, not_run, robust_results
from advdistill.evaluation.checks.gradients import check_zero_gradient
from advdistill.evaluation.checks.model import check_deterministic, check_inference_gradients, check_logits
from advdistill.evaluation.checks.ordering import check_ordering
from advdistill.evaluation.context import EvalContext
from advdistill.recipe.schema import ChecksConfig
from advdistill.torch_utils import module_mode, no_param_grad

log = logging.getLogger(__name__)

#: every check, in report order; the names are advdistill.recipe.schema.CHECK_NAMES ([eval.checks] skip)
CHECKS: dict[str, Callable[[CheckInputs], CheckResult]] = {
    "ordering": check_ordering,
    "more_steps": check_more_steps,
    "unbounded": check_unbounded,
    "black_box": check_black_box,
    "zero_gradient": check_zero_gradient,
    "deterministic": check_deterministic,
    "logits": check_logits,
    "inference_gradients": check_inference_gradients,
}

__all__ = ["CHECKS", "CheckInputs", "CheckResult", "checks_line", "run_checks"]


def checks_line(checks: Mapping[str, Any]) -> str:
    """``sanity checks: 1 flagged (more_steps), 6 passed, 1 not run, 11.9 s`` (a progress line)."""
    statuses = [result.get("status") for result in (checks.get("results") or {}).values()]
    parts = []
    for status in (FLAGGED, "passed", NOT_RUN):
        count = statuses.count(status)
        if count:
            flagged = f" ({', '.join(checks.get('flagged') or [])})" if status == FLAGGED else ""
            parts.append(f"{count} {status}{flagged}")
    return f"sanity checks: {', '.join(parts) or 'none selected'}, {checks.get('seconds', 0):.1f} s"


def run_checks(
    ctx: EvalContext,
    metrics: Mapping[str, Any],
    values: Mapping[str, Any],
    records: Mapping[str, Tensor],
    config: ChecksConfig,
    *,
    threats: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the checks ``config`` selects (all but ``skip``) on ``ctx.model`` (eval mode, frozen;
    restored afterwards); whether to run them at all (``enabled``) is the caller's decision.

    :param ctx: the evaluation's context (every evaluated image, the teacher, the seed).
    :param metrics: the evaluation's metric objects, by label; ``values`` their report keys,
        ``records`` their per-image flags (report key → bool (N,)) and ``threats`` what they
        declared about their robust keys (``ctx.describe``: norm, ε, attack and its settings) —
        the checks take every threat model from there.
    :returns: ``{"n": images the attack checks use, "flagged": [names], "seconds": total,
        "results": {name: {"status", "message", ..., "seconds"}}}``. A check that raises is
        reported as not run, with the error; it never loses the evaluation.
    """
    threats = threats or {}
    inputs = CheckInputs(ctx=ctx, metrics=metrics, values=values, records=records, config=config,
                         robust=robust_results(metrics, values, records, threats), threats=threats)
    results: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    with module_mode(ctx.model, False), no_param_grad(ctx.model, ctx.teacher):
        for name, check in CHECKS.items():
            if not config.selects(name):
                continue
            log.info("sanity check %r on %d images", name, inputs.n if name != "ordering" else ctx.n_examples)
            start = time.perf_counter()
            try:
                result = check(inputs)
            except Exception as exc:  # a check that breaks must not lose the evaluation
                log.warning("sanity check %r could not run: %s: %s", name, type(exc).__name__, exc)
                result = not_run(f"error: {type(exc).__name__}: {exc}")
            results[name] = {**result.to_json(), "seconds": round(time.perf_counter() - start, 3)}
            if result.status == FLAGGED:
                log.warning("sanity check %r flagged: %s", name, result.message)
            elif result.status == NOT_RUN:
                log.info("sanity check %r %s", name, result.message)
    return {
        "n": inputs.n,
        "flagged": [name for name, result in results.items() if result["status"] == FLAGGED],
        "seconds": round(time.perf_counter() - started, 3),
        "results": results,
    }
