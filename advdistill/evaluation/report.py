"""report.json / report.md: the results of one evaluation (DESIGN §5)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from advdistill.io import atomic_write_text

REPORT_SCHEMA_VERSION = 1

#: Report keys in the order the paper's tables use, with display names.
DISPLAY = {
    "clean": "Clean",
    "pgd20": "PGD-20",
    "autoattack": "AA",
    "gd": "GD ↓",
    "gc": "GC ↑",
    "pointwise_zero": "D(δ=0)",
    "pointwise_uniform": "D(δ~U)",
    "pointwise_adv": "D(δ=adv)",
    "pgd_l1": "PGD-L1",
    "pgd_l2": "PGD-L2",
    "transfer_vmi_fgsm": "VMI-FGSM",
    "linearity_remainder": "Taylor rem.",
}


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"
    return str(value)


def _is_curve(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(p, Mapping) and "eps" in p for p in value)


def curve_table(curve: list[Mapping[str, Any]]) -> list[str]:
    """Markdown lines of an ε-curve: ε in 1/255 units, then each accuracy ("–" when not run)."""
    keys = [k for k in curve[0] if k != "eps"]
    lines = ["| ε (/255) | " + " | ".join(DISPLAY.get(k, k) for k in keys) + " |", "|---|" + "---:|" * len(keys)]
    for point in curve:
        cells = [format_value(point[k]) if point.get(k) is not None else "–" for k in keys]
        lines.append(f"| {point['eps'] * 255:g} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _ordered(keys: set[str]) -> list[str]:
    return [k for k in DISPLAY if k in keys] + sorted(k for k in keys if k not in DISPLAY)


def selection_text(selected_by: Mapping[str, Any] | None) -> str:
    """How a best checkpoint was chosen, in words (legacy runs: chosen on test images)."""
    if not selected_by:
        return ""
    value = selected_by.get("value")
    shown = f"{selected_by.get('metric')} = {format_value(value)}" if value is not None else selected_by.get("metric")
    if selected_by.get("split") == "val":
        return f"selected by the highest periodic {shown} on the validation split (epoch {selected_by.get('epoch')})"
    return (f"selected by the highest periodic {shown} on TEST images (epoch {selected_by.get('epoch')}; a run "
            "from before the validation split): its numbers have seen the test set and are optimistic")


def checkpoint_text(checkpoint: Mapping[str, Any]) -> str:
    """The report's line on the reported checkpoint and the rule that chose it."""
    name, epoch, rule = checkpoint.get("name"), checkpoint.get("epoch"), checkpoint.get("rule")
    head = f"`{name}`" + (f" (epoch {epoch})" if epoch is not None else "")
    if rule == "last":
        why = "rule `last`: the weights after the final epoch, no selection"
    elif rule == "best":
        why = "rule `best`: " + (selection_text(checkpoint.get("selected_by")) or "the best periodic evaluation")
    elif rule == "ema":
        why = "rule `ema`: the exponential moving average of the weights after the final epoch (the ema callback)"
    else:
        why = f"the checkpoint file given ({checkpoint.get('path')})"
        if checkpoint.get("selected_by"):
            why += "; " + selection_text(checkpoint["selected_by"])
    note = f" — {checkpoint['note']}" if checkpoint.get("note") else ""
    return f"{head}, {why}{note}"


def _checkpoint_rows(report: Mapping[str, Any]) -> list[str]:
    """One table row per evaluated checkpoint; the reported one first and marked."""
    rows = dict(report["checkpoints"])
    reported = report["checkpoint"]["name"]
    names = [reported, *[name for name in rows if name != reported]]
    keys = _ordered(set().union(*(_scalars(rows[name]["metrics"]) for name in names)))
    lines = ["| checkpoint | " + " | ".join(DISPLAY.get(k, k) for k in keys) + " |",
             "|---|" + "---|" * len(keys)]
    for name in names:
        row = rows[name]
        parts = [f"epoch {row['epoch']}"] if row.get("epoch") is not None else []
        selected = row.get("selected_by") or {}
        if selected:
            split = "val" if selected.get("split") == "val" else "TEST (legacy)"
            parts.append(f"{split} {selected.get('metric')} {format_value(selected.get('value'))}")
        if row.get("same_weights_as"):
            parts.append(f"same weights as {row['same_weights_as']}")
        if name == reported:
            parts.append("reported")
        label = f"**{name}**" if name == reported else name
        scalars = _scalars(row["metrics"])
        cells = [format_value(scalars[k]) if k in scalars else "–" for k in keys]
        lines.append(f"| {label} ({'; '.join(parts)}) | " + " | ".join(cells) + " |")
    return [*lines, ""]


CHECK_STATUS = {"flagged": "**FLAGGED**", "passed": "passed", "not run": "not run"}


def _check_counts(checks: Mapping[str, Any]) -> str:
    """``**1 flagged**, 6 passed, 1 not run``."""
    statuses = [result.get("status") for result in (checks.get("results") or {}).values()]
    parts = []
    for status in CHECK_STATUS:
        count = statuses.count(status)
        if count:
            parts.append(f"**{count} {status}**" if status == "flagged" else f"{count} {status}")
    return ", ".join(parts) or "no check selected"


def check_lines(checks: Mapping[str, Any], *, only_flagged: bool = False) -> list[str]:
    """One markdown list item per check: ``- `name` passed: <numbers>`` / ``**FLAGGED**`` / ``not run``."""
    lines = []
    for name, result in (checks.get("results") or {}).items():
        status = result.get("status")
        if only_flagged and status != "flagged":
            continue
        message = str(result.get("message", ""))
        if status == "not run" and message.startswith("not run: "):
            message = message[len("not run: "):]
        lines.append(f"- `{name}` {CHECK_STATUS.get(status, status)}: {message}")
    return lines


def _checks_section(report: Mapping[str, Any]) -> list[str]:
    """The sanity checks of the reported checkpoint in full, then the other checkpoints' flags."""
    checks = report.get("checks")
    if not isinstance(checks, Mapping):
        return []
    checkpoint = report.get("checkpoint")
    name = checkpoint.get("name") if isinstance(checkpoint, Mapping) else None
    whose = f"Checkpoint `{name}`: " if name else ""
    lines = ["## Sanity checks", "",
             f"{whose}{_check_counts(checks)} (the attack checks use the first {checks.get('n')} evaluated "
             "images; definitions and what to do in docs/metrics.md, \"Sanity checks\").", "",
             *check_lines(checks), ""]
    for other, row in (report.get("checkpoints") or {}).items():
        if other == name or not isinstance(row.get("checks"), Mapping):
            continue
        if row.get("same_weights_as"):
            lines.append(f"Checkpoint `{other}`: the same weights as `{row['same_weights_as']}`, the same results.")
            lines.append("")
            continue
        lines += [f"Checkpoint `{other}`: {_check_counts(row['checks'])}.", ""]
        flagged = check_lines(row["checks"], only_flagged=True)
        if flagged:
            lines += [*flagged, ""]
    return lines


def markdown(report: Mapping[str, Any]) -> str:
    """A readable report: a paper-style table of the scalar metrics (one row per evaluated
    checkpoint), which checkpoint is reported and why, then the other results."""
    metrics = report.get("metrics", {})
    scalars = _scalars(metrics)
    ordered = _ordered(set(scalars))
    checkpoint = report.get("checkpoint")
    lines = [
        f"# Evaluation report: {report.get('name', '')}".rstrip(),
        "",
        f"- model: `{report.get('model')}`, dataset: `{report.get('dataset')}`, "
        f"examples: {report.get('n_examples')} test images",
        f"- recipe hash: `{report.get('recipe_hash')}`, device: {report.get('device', '-')}",
    ]
    if isinstance(checkpoint, Mapping):
        lines.append(f"- reported checkpoint: {checkpoint_text(checkpoint)}")
        for name, row in (report.get("checkpoints") or {}).items():
            if name != checkpoint.get("name") and row.get("selected_by"):
                lines.append(f"- also evaluated: `{name}` (epoch {row.get('epoch')}), "
                             f"{selection_text(row['selected_by'])}")
    elif checkpoint:
        lines.append(f"- checkpoint: {checkpoint}")
    if report.get("per_example"):
        lines.append(f"- per-image results: `{report['per_example']}` (docs/metrics.md, per-example records)")
    lines += ["", "Accuracies in percent; GD/GC and distances as defined in docs/metrics.md.", ""]
    if isinstance(checkpoint, Mapping) and report.get("checkpoints"):
        lines += _checkpoint_rows(report)
    elif ordered:
        lines += [
            "| " + " | ".join(DISPLAY.get(k, k) for k in ordered) + " |",
            "|" + "---|" * len(ordered),
            "| " + " | ".join(format_value(scalars[k]) for k in ordered) + " |",
            "",
        ]
    lines += _checks_section(report)
    for key, value in metrics.items():
        if key in scalars:
            continue
        lines += [f"## {key}", ""]
        if _is_curve(value):
            lines += curve_table(value)
        else:
            lines += ["```json", json.dumps(value, indent=2), "```", ""]
    failed = [f"- `{label}`: {message}" for label, message in (report.get("errors") or {}).items()]
    if isinstance(checkpoint, Mapping):
        for name, row in (report.get("checkpoints") or {}).items():
            if name != checkpoint.get("name") and not row.get("same_weights_as"):
                failed += [f"- `{label}` (checkpoint `{name}`): {message}"
                           for label, message in (row.get("errors") or {}).items()]
    if failed:
        lines += ["## Metrics that failed", "", *failed, ""]
    return "\n".join(lines)


def write_report(out_dir: Path, report: Mapping[str, Any]) -> None:
    """Write ``report.json`` and ``report.md`` atomically into ``out_dir``."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out_dir / "report.md", markdown(report))
