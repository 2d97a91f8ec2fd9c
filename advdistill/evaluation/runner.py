"""Running metric plugins over a model and collecting one report."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from advdistill.evaluation.context import EvalContext
from advdistill.interfaces import Metric
from advdistill.torch_utils import module_mode, no_param_grad

log = logging.getLogger(__name__)


def run_metrics(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    metrics: Mapping[str, Metric],
    *,
    device: torch.device,
    teacher: nn.Module | None = None,
    batch_size: int = 256,
    limit: int | None = None,
    seed: int = 0,
    recipe: Any = None,
    show_progress: bool = True,
    records: dict[str, Tensor] | None = None,
) -> tuple[dict[str, Any], dict[str, str], dict[str, float]]:
    """Evaluate ``model`` with each metric; returns ``(values, errors, seconds)``.

    A metric that raises is reported in ``errors`` and the others still run. The model is
    evaluated in eval mode with frozen parameters and restored afterwards. With ``records``,
    the per-image flags the metrics record (``ctx.record``) are added to it, by report key;
    those of a metric that failed are left out.
    """
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    with module_mode(model, False), no_param_grad(model, teacher):
        for index, (label, metric) in enumerate(metrics.items(), 1):
            log.info("evaluating %s (%d/%d) on %d images", label, index, len(metrics), images.shape[0])
            ctx = EvalContext(
                model=model, images=images, labels=labels, device=device, batch_size=batch_size,
                teacher=teacher, recipe=recipe, seed=seed, show_progress=show_progress, label=label,
            )
            if getattr(metric, "requires_teacher", False) and teacher is None:
                errors[label] = "needs a teacher, but none is configured (add [teacher] to the recipe)"
                continue
            start = time.perf_counter()
            try:
                result = dict(metric.evaluate(ctx))
            except Exception as exc:  # one failing metric must not lose the others' results
                log.warning("metric %r failed: %s: %s", label, type(exc).__name__, exc)
                errors[label] = f"{type(exc).__name__}: {exc}"
            else:
                clash = set(result) & set(values)
                if clash:
                    errors[label] = f"report keys {sorted(clash)} already written by another metric"
                values.update({k: v for k, v in result.items() if k not in clash})
                if records is not None:
                    records.update({k: v for k, v in ctx.records.items() if k not in clash and k not in records})
            seconds[label] = round(time.perf_counter() - start, 3)
            log.info("%s done in %.1f s: %s", label, seconds[label], errors.get(label) or result)
    return values, errors, seconds
