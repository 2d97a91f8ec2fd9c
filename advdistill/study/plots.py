"""The study figures: Fig. 4 (GC/GD vs robust accuracy) with error bars, the paired differences
as a forest plot, and the sweep's response. Same drawing style as advdistill.evaluation.plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from advdistill.evaluation.plots import ACCURACY_LABELS, figure, least_squares, save_figure
from advdistill.evaluation.report import DISPLAY


def _err(summary: Mapping[str, Any]) -> float:
    return summary["half_width"] or 0.0  # one seed: a point without a bar


def scatter_points(summary: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """Cells with GD, GC and a robust accuracy (AutoAttack if every such cell has it, else PGD-20)."""
    cells = {label: row["metrics"] for label, row in summary["cells"].items()}
    with_gd = {label: m for label, m in cells.items()
               if m.get("gd", {}).get("n") and m.get("gc", {}).get("n")}
    for accuracy in ("autoattack", "pgd20"):
        points = [{"label": label, "gd": m["gd"], "gc": m["gc"], "accuracy": m[accuracy]}
                  for label, m in with_gd.items() if m.get(accuracy, {}).get("n")]
        if points and len(points) == len(with_gd):
            return points, accuracy
    return [], None


def plot_scatter_with_errors(points: Sequence[Mapping[str, Any]], path: Path, accuracy: str) -> Path:
    """The paper's Fig. 4 over cells: accuracy vs GC (top) and vs GD (bottom), means with 95% CI bars
    in both directions and a least-squares line through the means."""
    fig, axes = figure(2, 1, size=(5.0, 6.4))
    acc = [p["accuracy"]["mean"] for p in points]
    acc_err = [_err(p["accuracy"]) for p in points]
    # fixed legend corners (where the usual trends leave room): "best" is slow with error bars
    for ax, key, name, corner in ((axes[0][0], "gc", "GC (cosine, higher is better)", "lower right"),
                                  (axes[1][0], "gd", "GD (L2 distance, lower is better)", "lower left")):
        x = [p[key]["mean"] for p in points]
        ax.errorbar(x, acc, xerr=[_err(p[key]) for p in points], yerr=acc_err, fmt="o", capsize=3, zorder=3)
        for xi, yi, p in zip(x, acc, points):
            ax.annotate(str(p["label"]), (xi, yi), fontsize="x-small", xytext=(3, 3), textcoords="offset points")
        line = least_squares(x, acc)
        if line is not None:
            lo, hi = min(x), max(x)
            ax.plot([lo, hi], [line[0] * lo + line[1], line[0] * hi + line[1]], "--", color="C3",
                    label=f"least squares: slope {line[0]:.3g}")
            ax.legend(fontsize="small", loc=corner)
        ax.set_xlabel(name)
        ax.set_ylabel(ACCURACY_LABELS.get(accuracy, accuracy))
        ax.grid(alpha=0.3)
    axes[0][0].set_title("means over seeds, bars: 95% t intervals", fontsize="small")
    return save_figure(fig, path)


def plot_forest(pairs: Sequence[Mapping[str, Any]], metrics: Sequence[str], path: Path) -> Path:
    """One panel per metric; a row per pair: mean paired difference (second − first) with its 95% CI."""
    shown = [m for m in metrics if any(p["metrics"][m]["n"] for p in pairs)]
    fig, axes = figure(len(shown), 1, size=(6.0, 0.9 + (0.35 * len(pairs) + 0.8) * len(shown)))
    labels = [f"{p['second']} − {p['first']}" for p in pairs]
    for ax, metric in zip((row[0] for row in axes), shown):
        rows = [(i, p["metrics"][metric]) for i, p in enumerate(pairs) if p["metrics"][metric]["n"]]
        ys = [i for i, _ in rows]
        ax.errorbar([r["mean"] for _, r in rows], ys, xerr=[_err(r) for _, r in rows], fmt="o", capsize=3)
        ax.axvline(0.0, color="0.4", linewidth=1)
        ax.set_yticks(range(len(pairs)), labels, fontsize="small")
        ax.set_ylim(-0.6, len(pairs) - 0.4)
        ax.invert_yaxis()
        ax.set_xlabel(f"difference in {DISPLAY.get(metric, metric)} (95% CI)")
        ax.grid(alpha=0.3, axis="x")
    return save_figure(fig, path)


def plot_sweep(sweep: Mapping[str, Any], metrics: Sequence[str], path: Path) -> Path:
    """The response to the swept parameter: each metric's mean with its 95% CI against the value."""
    rows = sweep["rows"]
    numeric = all(isinstance(r["value"], (int, float)) and not isinstance(r["value"], bool) for r in rows)
    x = [r["value"] if numeric else i for i, r in enumerate(rows)]
    shown = [m for m in metrics if any(r["metrics"][m]["n"] for r in rows)]
    fig, axes = figure(len(shown), 1, size=(5.0, 0.6 + 2.2 * len(shown)))
    for ax, metric in zip((row[0] for row in axes), shown):
        points = [(xi, r["metrics"][metric]) for xi, r in zip(x, rows) if r["metrics"][metric]["n"]]
        ax.errorbar([p for p, _ in points], [s["mean"] for _, s in points], yerr=[_err(s) for _, s in points],
                    fmt="o-", capsize=3)
        ax.set_ylabel(DISPLAY.get(metric, metric))
        ax.grid(alpha=0.3)
        if not numeric:
            ax.set_xticks(x, [_tick(r) for r in rows], fontsize="small")
    axes[-1][0].set_xlabel(f"{sweep['name']} ({sweep['key']})")
    return save_figure(fig, path)


def _tick(row: Mapping[str, Any]) -> str:
    """A non-numeric sweep value's tick: what its cell label says after '@' (``alpha=0.5``), else the value."""
    label = row.get("cell", "")
    return label.partition("@")[2] or str(row["value"])


def write_study_plots(summary: Mapping[str, Any], folder: Path) -> list[Path]:
    """``gd_gc_vs_aa.png`` (cells with GD, GC and AA or PGD-20), ``paired_differences.png`` (declared
    pairs) and ``sweep.png`` (a sweep), as far as the results allow."""
    written = []
    points, accuracy = scatter_points(summary)
    if points:
        written.append(plot_scatter_with_errors(points, folder / "gd_gc_vs_aa.png", accuracy))
    metrics = summary["metrics"]
    pairs = summary["pairs"]
    if pairs and any(p["metrics"][m]["n"] for p in pairs for m in metrics):
        written.append(plot_forest(pairs, metrics, folder / "paired_differences.png"))
    sweep = summary.get("sweep")
    if sweep and any(r["metrics"][m]["n"] for r in sweep["rows"] for m in metrics):
        written.append(plot_sweep(sweep, metrics, folder / "sweep.png"))
    return written
