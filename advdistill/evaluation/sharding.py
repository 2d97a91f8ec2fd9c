"""Evaluation over several processes (``torchrun``): each evaluates its part of the test set.

The evaluated images are cut into contiguous parts, one per process (sizes differ by at most
one). A metric whose numbers are means over the images (``Metric.mean_over_images``: every
built-in one, except AutoAttack with ``limit``) runs on each part; the parts' numbers are
averaged, weighted by their image counts, and their per-image records are concatenated in
image order, so the merged report and ``per_example.safetensors`` cover every image once. Any
other metric runs on the whole set in process 0 while the others wait. Deterministic metrics
give exactly the single-process numbers; those with random draws (PGD's random start, noise)
draw per part, so their numbers agree with a single-process evaluation up to that randomness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import torch
from attrs import define, field
from torch import Tensor, nn

from advdistill.engine.distributed import DistInfo, all_gather_object
from advdistill.evaluation.runner import progress, progress_line, run_metrics
from advdistill.interfaces import Metric


def part_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Images ``[start, stop)`` of process ``rank`` among ``world_size``: contiguous, sizes differ by ≤ 1."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def part_seed(seed: int, rank: int) -> int:
    """The evaluation seed of process ``rank``'s part: ``seed`` itself for process 0 (a one-process
    evaluation is unchanged), distinct streams for the others."""
    return seed if rank == 0 else (seed * 1_000_003 + rank * 104_729) % (2**63 - 1)


def is_sharded(metric: Any) -> bool:
    """Whether ``metric`` runs on each process's part (its numbers are means over images)."""
    return bool(getattr(metric, "mean_over_images", False))


@define
class PartResult:
    """One metric's outcome on one process's images."""

    n: int
    values: dict[str, Any] = field(factory=dict)
    error: str | None = None
    seconds: float = 0.0
    records: dict[str, Tensor] = field(factory=dict)
    #: what the metric declared about its robust keys (``ctx.describe``), and the label behind each key
    threats: dict[str, dict[str, Any]] = field(factory=dict)
    origins: dict[str, str] = field(factory=dict)


def evaluate_parts(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    metrics: Mapping[str, Metric],
    *,
    dist: DistInfo,
    seed: int,
    threats: dict[str, dict[str, Any]] | None = None,
    origins: dict[str, str] | None = None,
    progress_lines: bool = False,
    **common: Any,
) -> tuple[dict[str, Any], dict[str, str], dict[str, float], dict[str, Tensor]]:
    """Run ``metrics`` with the images cut over the processes; every process returns the merged
    ``(values, errors, seconds, records)`` of all images. ``common``: :func:`run_metrics`' options;
    ``threats`` and ``origins`` are filled as :func:`run_metrics` fills them; with ``progress_lines``
    process 0 prints one line per metric with the merged numbers (a part's would mislead)."""
    start, stop = part_bounds(int(images.shape[0]), dist.rank, dist.world_size)
    mine: dict[str, PartResult] = {}
    for label, metric in metrics.items():
        if is_sharded(metric):
            x, y, metric_seed = images[start:stop], labels[start:stop], part_seed(seed, dist.rank)
        elif dist.is_main:
            x, y, metric_seed = images, labels, seed
        else:
            continue
        if x.shape[0] == 0:  # fewer images than processes
            continue
        records: dict[str, Tensor] = {}
        part_threats: dict[str, dict[str, Any]] = {}
        part_origins: dict[str, str] = {}
        values, errors, seconds = run_metrics(model, x, y, {label: metric}, seed=metric_seed, records=records,
                                              threats=part_threats, origins=part_origins, **common)
        mine[label] = PartResult(int(x.shape[0]), values, errors.get(label), seconds.get(label, 0.0), records,
                                 part_threats, part_origins)
    parts = all_gather_object(mine, dist, "to merge the evaluation of the test set's parts")
    merged = merge_parts(parts, list(metrics), n=int(images.shape[0]))
    values, errors, seconds, records = merged
    declared_threats, declared_origins = merge_declarations(parts, list(metrics), errors)
    if threats is not None:
        threats.update({k: v for k, v in declared_threats.items() if k not in threats})
    if origins is not None:
        origins.update({k: v for k, v in declared_origins.items() if k not in origins})
    if progress_lines and dist.is_main:
        for index, label in enumerate(metrics, 1):
            if label not in seconds:
                continue
            result = {k: v for k, v in values.items() if declared_origins.get(k) == label}
            shown = SimpleNamespace(records=records, threats=declared_threats)
            progress.info("%s", progress_line(label, index, len(metrics), int(images.shape[0]), seconds[label],
                                              errors.get(label), None if label in errors else result, shown))
    return merged


def merge_declarations(
    parts: Sequence[Mapping[str, PartResult]], order: Sequence[str], errors: Mapping[str, str]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The threat models and key origins the metrics declared (the same on every part: a metric's
    declarations come from its configuration and the recipe): those of the first part that ran it."""
    threats: dict[str, dict[str, Any]] = {}
    origins: dict[str, str] = {}
    for label in order:
        if label in errors:
            continue
        found = next((part[label] for part in parts if label in part), None)
        if found is not None:
            threats.update({k: v for k, v in found.threats.items() if k not in threats})
            origins.update({k: v for k, v in found.origins.items() if k not in origins})
    return threats, origins


def merge_parts(
    parts: Sequence[Mapping[str, PartResult]], order: Sequence[str], *, n: int
) -> tuple[dict[str, Any], dict[str, str], dict[str, float], dict[str, Tensor]]:
    """Merge the processes' results (in rank order) into those of one evaluation of all ``n`` images.

    Values: weighted means over the parts (see :func:`merge_values`); records: concatenated; an
    error on any part is the metric's error; seconds: the slowest part's.
    """
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    records: dict[str, Tensor] = {}
    for label in order:
        found = [(rank, part[label]) for rank, part in enumerate(parts) if label in part]
        if not found:
            continue
        seconds[label] = max(result.seconds for _, result in found)
        failed = [(rank, result.error) for rank, result in found if result.error is not None]
        if failed:
            rank, error = failed[0]
            errors[label] = error if len(found) == 1 else f"{error} (process {rank})"
            continue
        try:
            merged = merge_values([r.values for _, r in found], [r.n for _, r in found])
            flags = _merge_records([r.records for _, r in found], n)
        except ValueError as exc:
            errors[label] = f"cannot merge the parts evaluated by the processes: {exc}"
            continue
        clash = set(merged) & set(values)
        if clash:
            errors[label] = f"report keys {sorted(clash)} already written by another metric"
        values.update({k: v for k, v in merged.items() if k not in clash})
        records.update({k: v for k, v in flags.items() if k not in records})
    return values, errors, seconds, records


def merge_values(parts: Sequence[Any], weights: Sequence[int]) -> Any:
    """The parts' results as one: numbers become their mean weighted by ``weights`` (image counts);
    equal numbers (an ε) stay as they are; tables and lists merge entry by entry; anything else
    must be equal in every part (ValueError otherwise)."""
    first = parts[0]
    if all(_same(p, first) for p in parts[1:]):
        return first
    if all(isinstance(p, Mapping) for p in parts):
        keys = list(first)
        if any(list(p) != keys for p in parts):
            raise ValueError(f"the parts returned different keys: {[sorted(p) for p in parts]}")
        return {key: merge_values([p[key] for p in parts], weights) for key in keys}
    if all(isinstance(p, (list, tuple)) for p in parts):
        if len({len(p) for p in parts}) != 1:
            raise ValueError("the parts returned lists of different lengths")
        return [merge_values([p[i] for p in parts], weights) for i in range(len(first))]
    if all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in parts):
        total = sum(weights)
        return math.fsum(float(p) * w for p, w in zip(parts, weights)) / total
    raise ValueError(f"the parts returned values that differ and are not numbers: {list(parts)!r}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _merge_records(parts: Sequence[Mapping[str, Tensor]], n: int) -> dict[str, Tensor]:
    keys = set(parts[0])
    if any(set(p) != keys for p in parts):
        raise ValueError("the parts recorded per-image results under different keys")
    merged = {key: torch.cat([p[key].to("cpu", torch.bool) for p in parts]) for key in parts[0]}
    for key, flags in merged.items():
        if flags.numel() != n:
            raise ValueError(f"{key}: {flags.numel()} per-image results for {n} images")
    return merged
