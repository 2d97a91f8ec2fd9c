"""A later evaluation adds to the report already in its directory instead of replacing it.

report.json (schema 2) keeps, per evaluated checkpoint and per report key, the number and where
it came from (``metric_info``: the checkpoint and its epoch, how many test images, when, which
metric with which settings, at which threat model). An evaluation merges into it key by key:
its numbers replace those of the same key and checkpoint, the others stay with their own
provenance. A checkpoint whose weights changed since (a resumed run's new ``last``) loses its
older numbers, as its per-example records do; a report on another data set or other test images
(or of another student architecture) is replaced as a whole. Schema-1 reports (before
``metric_info``) are read as well: their numbers are kept with the provenance they have
(checkpoint, number of images; no time).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from advdistill.evaluation.formatting import is_accuracy

log = logging.getLogger(__name__)

NOT_RUN = "not run"


def read_previous(out_dir: Path) -> dict[str, Any] | None:
    """The report.json already in ``out_dir``, or None (none, or not a readable report: replaced)."""
    path = Path(out_dir) / "report.json"
    if not path.exists():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("replacing %s: it is not a readable report (%s)", path, exc)
        return None
    if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
        log.warning("replacing %s: it is not an advdistill report (no \"metrics\" table)", path)
        return None
    return report


def rows_of(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The report's per-checkpoint rows, each with ``metrics``, ``metric_info``, ``errors``, ``seconds``
    (schema 1: ``metric_info`` made from what the report says; a report without rows: one row)."""
    rows = report.get("checkpoints")
    checkpoint = report.get("checkpoint")
    name = checkpoint.get("name") if isinstance(checkpoint, Mapping) else None
    if not isinstance(rows, Mapping) or not rows:
        rows = {name or "model": {"metrics": report.get("metrics", {}), "errors": report.get("errors", {}),
                                  "epoch": report.get("epoch")}}
    out = {}
    for label, row in rows.items():
        row = dict(row)
        row["metrics"] = dict(row.get("metrics") or {})
        row["errors"] = dict(row.get("errors") or {})
        if "seconds" not in row:
            row["seconds"] = dict(report.get("seconds") or {}) if label == name else {}
        info = dict(row.get("metric_info") or {})
        for key in row["metrics"]:  # schema 1: what is known of each number
            info.setdefault(key, {"checkpoint": label, "epoch": row.get("epoch"),
                                  "n_examples": report.get("n_examples"), "evaluated_at": None,
                                  "unit": "%" if is_accuracy(key) else None})
        row["metric_info"] = info
        out[label] = row
    return out


def mergeable(previous: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """None when ``previous``'s numbers are of the same kind of model on the same test images as
    ``current``'s; else why not."""
    if previous.get("model") != current.get("model"):
        return f"another model ({previous.get('model')} instead of {current.get('model')})"
    if previous.get("dataset") != current.get("dataset"):
        return f"the data set {previous.get('dataset')} instead of {current.get('dataset')}"
    old, new = previous.get("test_sha256"), current.get("test_sha256")
    if old is not None and new is not None and old != new:
        return f"other {current.get('dataset')} test images (another [data] setting)"
    return None


def _same_weights(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    if old.get("weights") and new.get("weights"):
        return old["weights"] == new["weights"]
    return old.get("epoch") == new.get("epoch")  # a schema-1 row: the epoch is all it says


def merge_checks(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Per check: this evaluation's result when it ran, else the earlier one (with its own time)."""
    if not old or not new:
        return new or old
    results = dict(old.get("results") or {})
    for name, result in (new.get("results") or {}).items():
        if result.get("status") != NOT_RUN or name not in results:
            results[name] = result
    merged = {**new, "results": results}
    merged["flagged"] = [name for name, result in results.items() if result.get("status") == "flagged"]
    return merged


def merge_row(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """One checkpoint's row: this evaluation's numbers over the earlier ones, key by key."""
    rerun = set(new.get("seconds") or {}) | set(new.get("errors") or {})
    row = {**old, **{k: v for k, v in new.items() if k not in ("metrics", "metric_info", "errors", "seconds",
                                                                 "checks")}}
    row["metrics"] = {**old.get("metrics", {}), **new.get("metrics", {})}
    row["metric_info"] = {**old.get("metric_info", {}), **new.get("metric_info", {})}
    row["errors"] = {**{k: v for k, v in old.get("errors", {}).items() if k not in rerun}, **new.get("errors", {})}
    row["seconds"] = {**old.get("seconds", {}), **new.get("seconds", {})}
    checks = merge_checks(old.get("checks"), new.get("checks"))
    if checks is not None:
        row["checks"] = checks
    return row


def merge_reports(previous: Mapping[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """``current`` (one evaluation's report) merged into ``previous`` (the directory's report).

    The top level (``metrics``, ``metric_info``, ``errors``, ``seconds``, ``checks``, ``epoch``) is
    the reported checkpoint's merged row; ``n_examples`` the fewest images any of its numbers used.
    """
    if previous is None:
        return current
    reason = mergeable(previous, current)
    if reason is not None:
        log.warning("replacing report.json: its numbers are of %s", reason)
        return current
    old_rows, new_rows = rows_of(previous), rows_of(current)
    rows: dict[str, dict[str, Any]] = {}
    for name, old in old_rows.items():
        new = new_rows.get(name)
        if new is None:
            rows[name] = old
        elif _same_weights(old, new):
            rows[name] = merge_row(old, new)
        else:
            log.info("checkpoint %s has other weights than when report.json was written: its older numbers go",
                     name)
            rows[name] = new
    rows.update({name: new for name, new in new_rows.items() if name not in rows})
    return with_reported_row(current, rows)


def with_reported_row(report: dict[str, Any], rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``report`` with ``checkpoints`` = ``rows`` and its top level taken from the reported row."""
    reported = report["checkpoint"]["name"] if isinstance(report.get("checkpoint"), Mapping) else next(iter(rows))
    row = rows[reported]
    merged = {**report, "checkpoints": rows}
    for key in ("metrics", "metric_info", "errors", "seconds"):
        merged[key] = dict(row.get(key) or {})
    if row.get("checks") is not None:
        merged["checks"] = row["checks"]
    sizes = [entry["n_examples"] for entry in merged["metric_info"].values()
             if isinstance(entry.get("n_examples"), int)]
    if sizes:
        merged["n_examples"] = min(sizes)
    return merged
