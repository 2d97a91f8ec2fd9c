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


def markdown(report: Mapping[str, Any]) -> str:
    """A readable report: a paper-style table of the scalar metrics, then the rest."""
    metrics = report.get("metrics", {})
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    ordered = [k for k in DISPLAY if k in scalars] + sorted(k for k in scalars if k not in DISPLAY)
    lines = [
        f"# Evaluation report: {report.get('name', '')}".rstrip(),
        "",
        f"- model: `{report.get('model')}`, dataset: `{report.get('dataset')}`, "
        f"examples: {report.get('n_examples')}, checkpoint: {report.get('checkpoint', '-')}",
        f"- recipe hash: `{report.get('recipe_hash')}`, device: {report.get('device', '-')}",
        "",
        "Accuracies in percent; GD/GC and distances as defined in docs/metrics.md.",
        "",
    ]
    if ordered:
        lines += [
            "| " + " | ".join(DISPLAY.get(k, k) for k in ordered) + " |",
            "|" + "---|" * len(ordered),
            "| " + " | ".join(format_value(scalars[k]) for k in ordered) + " |",
            "",
        ]
    for key, value in metrics.items():
        if key in scalars:
            continue
        lines += [f"## {key}", ""]
        if _is_curve(value):
            lines += curve_table(value)
        else:
            lines += ["```json", json.dumps(value, indent=2), "```", ""]
    if report.get("errors"):
        lines += ["## Metrics that failed", ""]
        lines += [f"- `{label}`: {message}" for label, message in report["errors"].items()]
        lines.append("")
    return "\n".join(lines)


def write_report(out_dir: Path, report: Mapping[str, Any]) -> None:
    """Write ``report.json`` and ``report.md`` atomically into ``out_dir``."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out_dir / "report.md", markdown(report))
