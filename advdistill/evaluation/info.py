"""``metric_info``: what report.json says about each number beside it — which metric and settings,
how many test images, when, the threat model of a robust accuracy, whether its per-image flags
are in per_example.safetensors (the checkpoint and its epoch are added per row)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

import attrs

from advdistill.config import config_to_dict
from advdistill.evaluation.records import PerExample


def utc_now() -> str:
    """``2025-01-31T12:00:00Z``: when an evaluation ran (UTC, seconds)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _settings(metric: Any) -> dict[str, Any] | None:
    config = getattr(metric, "config", None)
    return config_to_dict(config) if config is not None and attrs.has(type(config)) else None


def _threat_of(key: str, label: str | None, origins: Mapping[str, str],
               threats: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """Report key ``key``'s threat model: its own declaration, else (a curve) those its metric made
    for its per-image keys: one norm, the list of radii."""
    own = threats.get(key)
    if own is not None:
        return {"norm": own["norm"], "eps": own["eps"], "source": own["source"]}
    points = [t for k, t in threats.items() if origins.get(k) == label and k.startswith(f"{key}@")]
    norms = sorted({t["norm"] for t in points})
    if not points or len(norms) != 1:
        return None
    return {"norm": norms[0], "eps": sorted({t["eps"] for t in points}), "source": points[0]["source"]}


def _attack_of(key: str, label: str | None, origins: Mapping[str, str],
               threats: Mapping[str, Mapping[str, Any]]) -> str | None:
    own = threats.get(key)
    if own is not None:
        return own.get("label") or own.get("attack")
    names = []
    for k, threat in threats.items():
        name = threat.get("label") or threat.get("attack")
        if origins.get(k) == label and k.startswith(f"{key}@") and name not in names:
            names.append(name)
    return " and ".join(names) or None


def _images(key: str, label: str | None, values: Mapping[str, Any], metrics: Mapping[str, Any], n: int) -> int:
    """How many images ``key`` is over: ``n``, or the first ``<key>_n`` of a metric with a ``limit``
    (AutoAttack's)."""
    count = values.get(f"{key}_n")
    limited = getattr(getattr(metrics.get(label or ""), "config", None), "limit", None) is not None
    return count if limited and isinstance(count, int) and not isinstance(count, bool) else n


def metric_info(
    values: Mapping[str, Any],
    metrics: Mapping[str, Any],
    kinds: Mapping[str, str],
    origins: Mapping[str, str],
    seconds: Mapping[str, float],
    records: Mapping[str, Any],
    threats: Mapping[str, Mapping[str, Any]],
    *,
    n_examples: int,
    evaluated_at: str,
) -> dict[str, dict[str, Any]]:
    """One entry per report key of an evaluation: ``label`` and ``kind`` of the metric that wrote it,
    its ``settings``, ``n_examples``, ``evaluated_at``, ``seconds`` (of the metric), ``unit`` ("%"
    for accuracies: keys with per-image flags), and for robust accuracies ``threat`` ({"norm",
    "eps", "source"}; a curve: the list of its radii) and ``attack``."""
    info = {}
    for key in values:
        label = origins.get(key)
        images = _images(key, label, values, metrics, n_examples)
        # a limited AutoAttack records no per-image flags, but is an accuracy all the same
        accuracy = key in records or any(k.startswith(f"{key}@") for k in records) or images != n_examples
        entry: dict[str, Any] = {"label": label, "kind": kinds.get(label or ""), "n_examples": images,
                                 "evaluated_at": evaluated_at, "seconds": seconds.get(label or ""),
                                 "unit": "%" if accuracy else None}
        threat = _threat_of(key, label, origins, threats)
        if threat is not None:
            entry["threat"] = threat
            entry["attack"] = _attack_of(key, label, origins, threats)
        settings = _settings(metrics.get(label or ""))
        if settings is not None:
            entry["settings"] = settings
        info[key] = entry
    return info


def mark_records(report: dict[str, Any], records: PerExample) -> None:
    """Set each number's ``per_example``: whether per_example.safetensors holds its per-image flags
    (of its checkpoint, on its images) — after a merge the report and the records file agree."""
    n = int(records.index.numel())
    for name, row in (report.get("checkpoints") or {}).items():
        keys = set(records.records.get(name, {}))
        for key, entry in (row.get("metric_info") or {}).items():
            has = key in keys or any(k.startswith(f"{key}@") for k in keys)
            entry["per_example"] = bool(has and entry.get("n_examples") == n)
    reported = (report.get("checkpoint") or {}).get("name")
    if reported in (report.get("checkpoints") or {}):
        report["metric_info"] = dict(report["checkpoints"][reported]["metric_info"])
