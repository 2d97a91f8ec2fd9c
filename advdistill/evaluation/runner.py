"""Running metric plugins over a model and collecting one report."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from advdistill.evaluation.context import EvalContext
from advdistill.evaluation.formatting import format_metric
from advdistill.evaluation.threat import threat_text
from advdistill.interfaces import Metric
from advdistill.torch_utils import module_mode, no_param_grad

log = logging.getLogger(__name__)
#: one line per metric of every evaluation (INFO); `advdistill eval` and `train` print it
progress = logging.getLogger("advdistill.evaluation.progress")


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
    threats: dict[str, dict[str, Any]] | None = None,
    origins: dict[str, str] | None = None,
    progress_lines: bool = False,
) -> tuple[dict[str, Any], dict[str, str], dict[str, float]]:
    """Evaluate ``model`` with each metric; returns ``(values, errors, seconds)``.

    A metric that raises is reported in ``errors`` and the others still run. The model is
    evaluated in eval mode with frozen parameters and restored afterwards. With ``records``,
    the per-image flags the metrics record (``ctx.record``) are added to it, by report key;
    with ``threats``, what they declared about their robust keys (``ctx.describe``); with
    ``origins``, the label of the metric behind each report key and record key. Those of a
    metric that failed are left out. With ``progress_lines``, one line per metric goes to the
    logger ``advdistill.evaluation.progress`` (INFO), which the command line prints (the test-set
    evaluations do; the periodic evaluation and the teacher audit keep quiet).
    """
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    with module_mode(model, False), no_param_grad(model, teacher):
        for index, (label, metric) in enumerate(metrics.items(), 1):
            log.debug("evaluating %s (%d/%d) on %d images", label, index, len(metrics), images.shape[0])
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
                if threats is not None:
                    threats.update({k: v for k, v in ctx.threats.items() if k not in clash and k not in threats})
                if origins is not None:
                    origins.update({k: label for k in [*result, *ctx.records, *ctx.threats]
                                    if k not in clash and k not in origins})
            seconds[label] = round(time.perf_counter() - start, 3)
            if progress_lines:
                progress.info("%s", progress_line(label, index, len(metrics), images.shape[0], seconds[label],
                                                  errors.get(label), result if label not in errors else None, ctx))
    return values, errors, seconds


def progress_line(label: str, index: int, total: int, n: int, seconds: float, error: str | None,
                  result: Mapping[str, Any] | None, ctx: EvalContext) -> str:
    """``[2/3] pgd20 = 63.00 % (Linf ε = 0.2) on 1000 images, 18.6 s`` — or the error."""
    head = f"[{index}/{total}] {label}"
    if error is not None:
        return f"{head} FAILED after {seconds:.1f} s on {n} images: {error}"
    shown = []
    for key, value in (result or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            accuracy = key in ctx.records
            threat = ctx.threats.get(key)
            where = f" ({threat_text(threat['norm'], threat['eps'])})" if threat else ""
            shown.append(f"{key} = {format_metric(key, value, {key: {'unit': '%' if accuracy else None}})}"
                         f"{' %' if accuracy else ''}{where}")
        else:
            shown.append(f"{key} (in the report)")
    return f"{head}: {', '.join(shown) or 'no value'} on {n} images, {seconds:.1f} s"
