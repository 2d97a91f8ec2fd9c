"""report.json / report.md: the results of the evaluations of a run (DESIGN §5).

Schema 2 (schema 1 plus ``metric_info``, ``threat``, ``test_sha256`` and per-row ``weights`` /
``seconds`` / ``metric_info``; every schema-1 key is still there with the same meaning): see the
metrics documentation, "report.json".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from advdistill.evaluation.formatting import format_accuracy, format_metric
from advdistill.evaluation.threat import eps_text, threat_text
from advdistill.io import atomic_write_text

REPORT_SCHEMA_VERSION = 2
#: how reports refer to the documentation (an installed package has no docs/ folder to link)
DOCS = "the advdistill documentation, \"Metrics\" page"

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


def _is_curve(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(p, Mapping) and "eps" in p for p in value)


def curve_table(curve: list[Mapping[str, Any]], info: Mapping[str, Any] | None = None) -> list[str]:
    """Markdown lines of an ε-curve: ε (as ``8/255`` or ``0.25``), then each accuracy (%, "–" when not run).

    ``info``: the curve's ``metric_info`` entry (its norm and attacks name the columns)."""
    info = info or {}
    norm = (info.get("threat") or {}).get("norm")
    keys = [k for k in curve[0] if k != "eps"]
    names = [DISPLAY.get(k, k) for k in keys]
    settings = info.get("settings") or {}
    if "autoattack" in keys and isinstance(settings.get("autoattack"), Mapping):
        names[keys.index("autoattack")] = f"AA ({_autoattack_name(settings['autoattack'])})"
    head = f"ε ({threat_text(norm, None)})" if norm else "ε"
    lines = [f"| {head} | " + " | ".join(names) + " |", "|---|" + "---:|" * len(keys)]
    for point in curve:
        cells = [format_accuracy(point[k]) if point.get(k) is not None else "–" for k in keys]
        lines.append(f"| {eps_text(point['eps'])} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _autoattack_name(settings: Mapping[str, Any]) -> str:
    if settings.get("version", "standard") == "custom":
        return " + ".join(str(name).upper() for name in settings.get("attacks") or ())
    return f"{settings.get('version', 'standard')} AA"


def _scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _ordered(keys: set[str]) -> list[str]:
    return [k for k in DISPLAY if k in keys] + sorted(k for k in keys if k not in DISPLAY)


def selection_text(selected_by: Mapping[str, Any] | None) -> str:
    """How a best checkpoint was chosen, in words (legacy runs: chosen on test images)."""
    if not selected_by:
        return ""
    value = selected_by.get("value")
    shown = (f"{selected_by.get('metric')} = {format_accuracy(value)}" if isinstance(value, (int, float))
             else selected_by.get("metric"))
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
            value = selected.get("value")
            shown = format_accuracy(value) if isinstance(value, (int, float)) else value
            parts.append(f"{split} {selected.get('metric')} {shown}")
        if row.get("same_weights_as"):
            parts.append(f"same weights as {row['same_weights_as']}")
        if name == reported:
            parts.append("reported")
        label = f"**{name}**" if name == reported else name
        scalars = _scalars(row["metrics"])
        info = row.get("metric_info") or {}
        cells = [format_metric(k, scalars[k], info) if k in scalars else "–" for k in keys]
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
             f"images; definitions and what to do: {DOCS}, \"Sanity checks\").", "",
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


def teacher_text(teacher: Any) -> str:
    """``robustbench `Wang2023Better_WRN-28-10``` / ``checkpoint runs/t/checkpoints/last.safetensors`` / none."""
    if not isinstance(teacher, Mapping) or not teacher:
        return "none"
    kind = teacher.get("kind", "?")
    for field_name in ("name", "path", "model_dir"):
        if teacher.get(field_name):
            return f"`{kind}` {teacher[field_name]}"
    return f"`{kind}`"


def _threat_cell(entry: Mapping[str, Any]) -> str:
    threat = entry.get("threat")
    if not isinstance(threat, Mapping):
        return "–"
    eps = threat.get("eps")
    if isinstance(eps, list) and eps:
        return f"{threat_text(threat.get('norm'), None)} ε = {eps_text(eps[0])} … {eps_text(eps[-1])}"
    return threat_text(threat.get("norm"), eps if isinstance(eps, (int, float)) else None)


def _when(entry: Mapping[str, Any]) -> str:
    at = entry.get("evaluated_at")
    return str(at).replace("T", " ").rstrip("Z") if at else "(not recorded)"


def provenance_lines(report: Mapping[str, Any]) -> list[str]:
    """"Where each number comes from": per checkpoint and metric, the images, the threat model and
    attack of a robust number, and when it was evaluated."""
    rows = report.get("checkpoints") or {}
    if not isinstance(rows, Mapping) or not any(row.get("metric_info") for row in rows.values()):
        return []
    reported = (report.get("checkpoint") or {}).get("name")
    names = [name for name in [reported, *rows] if name in rows]
    lines = ["## Where each number comes from", "",
             "| checkpoint | metric | images | threat model | attack | evaluated (UTC) |",
             "|---|---|---:|---|---|---|"]
    for name in dict.fromkeys(names):
        row = rows[name]
        if row.get("same_weights_as"):
            continue
        info = row.get("metric_info") or {}
        for key in _ordered(set(info)):
            entry = info[key]
            images = str(entry.get("n_examples", "?"))
            if entry.get("per_example") is False and entry.get("unit") == "%":
                images += " (no per-image records)"
            lines.append(f"| {name} | {DISPLAY.get(key, key)} | {images} | {_threat_cell(entry)} | "
                         f"{entry.get('attack') or '–'} | {_when(entry)} |")
    return [*lines, ""]


def _images_text(report: Mapping[str, Any]) -> str:
    """``1000 test images``, or ``100–1000 test images (per metric below)`` when the numbers differ."""
    sizes = sorted({entry.get("n_examples") for row in (report.get("checkpoints") or {}).values()
                    for entry in (row.get("metric_info") or {}).values()
                    if isinstance(entry.get("n_examples"), int)})
    if len(sizes) > 1:
        return f"{sizes[0]}–{sizes[-1]} test images (per number in \"Where each number comes from\")"
    return f"{report.get('n_examples')} test images"


def markdown(report: Mapping[str, Any]) -> str:
    """A readable report: a paper-style table of the scalar metrics (one row per evaluated
    checkpoint), which checkpoint is reported and why, where each number comes from (images,
    threat model, time), then the other results."""
    metrics = report.get("metrics", {})
    scalars = _scalars(metrics)
    ordered = _ordered(set(scalars))
    checkpoint = report.get("checkpoint")
    info = report.get("metric_info") or {}
    lines = [
        f"# Evaluation report: {report.get('name', '')}".rstrip(),
        "",
        f"- model: `{report.get('model')}`, teacher: {teacher_text(report.get('teacher'))}, "
        f"dataset: `{report.get('dataset')}`, {_images_text(report)}",
    ]
    threat = report.get("threat")
    if isinstance(threat, Mapping):
        where = {"[attack]": "the recipe's [attack]"}.get(threat.get("source"), "the paper's default")
        lines.append(f"- threat model: {threat_text(threat.get('norm'), threat.get('eps'))} ({where}); the robust "
                     "metrics use it unless their settings say otherwise")
    lines.append(f"- recipe hash: `{report.get('recipe_hash')}`, device: {report.get('device', '-')}")
    if isinstance(checkpoint, Mapping):
        lines.append(f"- reported checkpoint: {checkpoint_text(checkpoint)}")
        for name, row in (report.get("checkpoints") or {}).items():
            if name != checkpoint.get("name") and row.get("selected_by"):
                lines.append(f"- also evaluated: `{name}` (epoch {row.get('epoch')}), "
                             f"{selection_text(row['selected_by'])}")
    elif checkpoint:
        lines.append(f"- checkpoint: {checkpoint}")
    if report.get("per_example"):
        lines.append(f"- per-image results: `{report['per_example']}` (see {DOCS}, \"Per-example records\")")
    lines += ["", f"Accuracies in percent; GD, GC and the distances as defined in {DOCS}.", ""]
    if isinstance(checkpoint, Mapping) and report.get("checkpoints"):
        lines += _checkpoint_rows(report)
    elif ordered:
        lines += [
            "| " + " | ".join(DISPLAY.get(k, k) for k in ordered) + " |",
            "|" + "---|" * len(ordered),
            "| " + " | ".join(format_metric(k, scalars[k], info) for k in ordered) + " |",
            "",
        ]
    lines += provenance_lines(report)
    lines += _checks_section(report)
    for key, value in metrics.items():
        if key in scalars:
            continue
        lines += [f"## {key}", ""]
        if _is_curve(value):
            lines += curve_table(value, info.get(key))
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
