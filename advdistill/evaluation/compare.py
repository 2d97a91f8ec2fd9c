"""``advdistill compare``: one paper-style table over several runs, and the Fig. 4 scatter."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from advdistill.engine.checkpoint import atomic_write_text
from advdistill.errors import DataError
from advdistill.evaluation import plots
from advdistill.evaluation.report import DISPLAY, format_value

log = logging.getLogger(__name__)

#: the columns of the paper's Tables 2–4
COLUMNS = ("clean", "pgd20", "autoattack", "gd", "gc")


def load_report(path: str | Path) -> dict[str, Any]:
    """The ``report.json`` of a run directory (or the file itself)."""
    path = Path(path)
    file = path / "report.json" if path.is_dir() else path
    if not file.exists():
        hint = f"run `advdistill eval {path}` first" if path.is_dir() else "give a run directory"
        raise DataError(f"{file} not found: {hint}.")
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, or bytes that are not UTF-8
        raise DataError(f"{file} is not a readable report (JSON): {exc}") from None
    if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
        raise DataError(f"{file} is not an advdistill report: it has no \"metrics\" table.")
    return report


def _labels(paths: Sequence[Path]) -> list[str]:
    # the directory name, made unique with its parent when two runs share it
    names = [p.name if p.is_dir() else p.parent.name for p in paths]
    return [
        name if names.count(name) == 1 else f"{(p if p.is_dir() else p.parent).parent.name}/{name}"
        for p, name in zip(paths, names)
    ]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def comparison_table(runs: Mapping[str, Mapping[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """A markdown table: one row per run (label → report), Clean/PGD-20/AA/GD/GC columns; "–" if absent."""
    header = "| run | " + " | ".join(DISPLAY.get(c, c) for c in columns) + " |"
    lines = [header, "|---|" + "---:|" * len(columns)]
    for label, report in runs.items():
        metrics = report.get("metrics", {})
        cells = [format_value(metrics[c]) if _number(metrics.get(c)) else "–" for c in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def scatter_points(runs: Mapping[str, Mapping[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """Points for the GD/GC-vs-accuracy scatter and the accuracy used (AutoAttack, else PGD-20).

    Only runs with GD, GC and that accuracy take part.
    """
    with_gd = {
        label: r["metrics"] for label, r in runs.items()
        if _number(r["metrics"].get("gd")) and _number(r["metrics"].get("gc"))
    }
    for accuracy in ("autoattack", "pgd20"):
        points = [
            {"label": label, "gd": m["gd"], "gc": m["gc"], accuracy: m[accuracy]}
            for label, m in with_gd.items() if _number(m.get(accuracy))
        ]
        if points and len(points) == len(with_gd):
            return points, accuracy
    return [], None


def compare_runs(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None) -> dict[str, Any]:
    """Read each run's report.json; returns the table and, with ``out_dir``, writes
    ``comparison.md``, ``comparison.json`` and ``plots/`` (gd_gc_vs_aa.png, and eps_curve.png /
    linearity.png overlays when the runs have that data)."""
    if not run_dirs:
        raise DataError("compare needs at least one run directory")
    paths = [Path(p) for p in run_dirs]
    runs = {label: load_report(p) for label, p in zip(_labels(paths), paths)}
    table = comparison_table(runs)
    points, accuracy = scatter_points(runs)
    result: dict[str, Any] = {"runs": {label: str(p) for label, p in zip(runs, paths)}, "table": table,
                              "scatter_accuracy": accuracy, "plots": []}
    if out_dir is None:
        return result
    out = Path(out_dir)
    figures = out / "plots"
    if points:
        result["plots"].append(plots.plot_gd_gc_vs_accuracy(points, figures / "gd_gc_vs_aa.png", accuracy))
    else:
        log.warning("no run has GD, GC and an accuracy: plots/gd_gc_vs_aa.png is not drawn "
                    "(evaluate with --metrics grad_alignment,autoattack)")
    curves = {label: r["metrics"]["eps_curve"] for label, r in runs.items() if r["metrics"].get("eps_curve")}
    if curves:
        result["plots"].append(plots.plot_eps_curve(curves, figures / "eps_curve.png"))
    series = {}
    for label, path in zip(runs, paths):
        found = plots.read_linearity((path if path.is_dir() else path.parent) / "metrics.jsonl")
        if found:
            series[label] = found
    if series:
        result["plots"].append(plots.plot_linearity(series, figures / "linearity.png"))
    result["plots"] = [str(p) for p in result["plots"]]
    note = ""
    if accuracy == "pgd20":
        note = "\nThe GD/GC scatter uses PGD-20: not every run has AutoAttack.\n"
    atomic_write_text(out / "comparison.md", "# Comparison\n\n" + table + note)
    summary = {
        "runs": {label: {"path": str(p), "metrics": runs[label]["metrics"]} for label, p in zip(runs, paths)},
        "scatter_accuracy": accuracy,
    }
    atomic_write_text(out / "comparison.json", json.dumps(summary, indent=2) + "\n")
    return result
