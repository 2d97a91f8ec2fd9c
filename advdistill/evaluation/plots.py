"""The evaluation figures: ε-curve (Fig. 5), linearity over epochs (Fig. 2b), GD/GC vs AA (Fig. 4),
and the training curves of a run.

Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas (no pyplot state, no
display needed) and written atomically as PNG.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from advdistill.engine.metrics_log import read_records
from advdistill.io import atomic_write

log = logging.getLogger(__name__)

#: display names of the accuracies a scatter can use on its y axis
ACCURACY_LABELS = {"autoattack": "AutoAttack accuracy (%)", "pgd20": "PGD-20 accuracy (%)"}
#: a least-squares line through fewer points says nothing (two points always lie on a line)
MIN_REGRESSION_POINTS = 3


def figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (5.0, 3.6)) -> tuple[Any, Any]:
    """A matplotlib ``Figure`` on the Agg canvas (no pyplot state) and its axes, always 2-D (rows × cols)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` as PNG (120 dpi) to ``path`` atomically; returns ``path``."""
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    return path


def least_squares(x: Sequence[float], y: Sequence[float]) -> tuple[float, float] | None:
    """Slope and intercept of the least-squares line y ≈ a·x + b, or None (fewer than
    :data:`MIN_REGRESSION_POINTS` points, or fewer than 2 distinct x)."""
    if len(x) < MIN_REGRESSION_POINTS or len(set(x)) < 2:
        return None
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((xi - mx) ** 2 for xi in x)
    sxy = sum((xi - mx) * (yi - my) for xi, yi in zip(x, y))
    slope = sxy / sxx
    return slope, my - slope * mx


def regression_lines(points: Sequence[Mapping[str, Any]], accuracy: str) -> dict[str, dict[str, float]] | None:
    """The scatter's least-squares lines, accuracy vs GC and vs GD: ``{"gc": {"slope", "intercept"},
    "gd": {...}}``; None with fewer than :data:`MIN_REGRESSION_POINTS` runs."""
    acc = [float(p[accuracy]) for p in points]
    lines = {}
    for key in ("gc", "gd"):
        line = least_squares([float(p[key]) for p in points], acc)
        if line is None:
            return None
        lines[key] = {"slope": line[0], "intercept": line[1]}
    return lines


def _eps_scale(curves: Mapping[str, Sequence[Mapping[str, Any]]]) -> float:
    """255 when every radius is a whole number of 1/255 (CIFAR's 8/255 …), else 1 (pixel units)."""
    radii = [p["eps"] * 255 for curve in curves.values() for p in curve]
    return 255.0 if all(abs(r - round(r)) < 1e-6 for r in radii) else 1.0


def plot_eps_curve(curves: Mapping[str, Sequence[Mapping[str, Any]]], path: Path, norm: str = "linf") -> Path:
    """Accuracy (%) vs ε (×1/255 when the radii are whole multiples of it): PGD solid, AutoAttack
    dashed, one colour per run.

    ``curves`` maps a run label to its report's ``eps_curve`` list; ``norm`` names the x axis.
    """
    fig, axes = figure()
    ax = axes[0][0]
    scale = _eps_scale(curves)
    for i, (label, curve) in enumerate(curves.items()):
        color = f"C{i % 10}"
        points = sorted(curve, key=lambda p: p["eps"])
        eps = [p["eps"] * scale for p in points]
        pgd_key = next((k for k in points[0] if k.startswith("pgd")), None) if points else None
        if pgd_key is not None:
            ax.plot(eps, [p[pgd_key] for p in points], "o-", color=color, label=f"{label} {pgd_key.upper()}")
        aa = [(e, p.get("autoattack")) for e, p in zip(eps, points) if p.get("autoattack") is not None]
        if aa:
            ax.plot(*zip(*aa), "s--", color=color, label=f"{label} AA")
    name = {"linf": "Linf", "l2": "L2", "l1": "L1"}.get(norm, norm)
    ax.set_xlabel(f"ε (×1/255, {name})" if scale == 255 else f"ε ({name}, pixel units)")
    ax.set_ylabel("robust accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def read_linearity(metrics_jsonl: Path) -> list[tuple[int, float]]:
    """(epoch, remainder share) from the epoch records of a run's ``metrics.jsonl`` (may be empty)."""
    return [
        (int(record["epoch"]), float(record["linearity"]))
        for record in read_records(Path(metrics_jsonl))
        if record.get("event") == "epoch" and record.get("linearity") is not None
    ]


def plot_linearity(series: Mapping[str, Sequence[tuple[int, float]]], path: Path) -> Path:
    """Taylor remainder share vs epoch, one line per run (``series``: label → [(epoch, value)])."""
    fig, axes = figure()
    ax = axes[0][0]
    for label, points in series.items():
        epochs, values = zip(*sorted(points))
        ax.plot(epochs, values, "o-", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("remainder share ‖r‖ / ‖f(x+ε) − f(x)‖")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def plot_gd_gc_vs_accuracy(
    points: Sequence[Mapping[str, Any]], path: Path, accuracy: str = "autoattack"
) -> Path:
    """Two panels as the paper's Fig. 4: robust accuracy vs GC (top) and vs GD (bottom), with
    least-squares regression lines. ``points``: dicts with "label", "gd", "gc" and ``accuracy``."""
    fig, axes = figure(2, 1, size=(5.0, 6.4))
    acc = [float(p[accuracy]) for p in points]
    for ax, key, name in ((axes[0][0], "gc", "GC (cosine, higher is better)"),
                          (axes[1][0], "gd", "GD (L2 distance, lower is better)")):
        x = [float(p[key]) for p in points]
        ax.scatter(x, acc, zorder=3)
        for xi, yi, p in zip(x, acc, points):
            ax.annotate(str(p["label"]), (xi, yi), fontsize="x-small", xytext=(3, 3),
                        textcoords="offset points")
        line = least_squares(x, acc)
        if line is not None:
            lo, hi = min(x), max(x)
            ax.plot([lo, hi], [line[0] * lo + line[1], line[0] * hi + line[1]], "--", color="C3",
                    label=f"least squares: slope {line[0]:.3g}")
            ax.legend(fontsize="small")
        ax.set_xlabel(name)
        ax.set_ylabel(ACCURACY_LABELS.get(accuracy, accuracy))
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def read_training(metrics_jsonl: Path) -> list[dict[str, Any]]:
    """The epoch records of a run's ``metrics.jsonl`` (may be empty)."""
    return [record for record in read_records(Path(metrics_jsonl))
            if record.get("event") == "epoch" and isinstance(record.get("epoch"), int)]


def plot_training(epochs: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """The training curves of a run: the mean training loss per epoch (left) and, with a periodic
    evaluation, its validation accuracies per epoch with the best epoch marked (right)."""
    with_eval = [r for r in epochs if isinstance(r.get("eval"), Mapping)]
    fig, axes = figure(1, 2 if with_eval else 1, size=(9.0 if with_eval else 5.0, 3.6))
    loss_ax = axes[0][0]
    losses = [(r["epoch"], r["train_loss"]) for r in epochs if isinstance(r.get("train_loss"), (int, float))]
    if losses:
        loss_ax.plot(*zip(*losses), "o-", markersize=3)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss (mean over the epoch)")
    loss_ax.grid(alpha=0.3)
    if with_eval:
        ax = axes[0][1]
        names = list(dict.fromkeys(k for r in with_eval for k, v in r["eval"].items() if isinstance(v, (int, float))))
        for name in names:
            values = [(r["epoch"], r["eval"][name]) for r in with_eval if isinstance(r["eval"].get(name), (int, float))]
            ax.plot(*zip(*values), "o-", markersize=3, label=name)
        best = [r["epoch"] for r in epochs if r.get("best")]
        if best:
            ax.axvline(best[-1], color="grey", linestyle=":", label=f"best (epoch {best[-1]})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return save_figure(fig, path)


def write_run_plots(out_dir: Path, report: Mapping[str, Any], run_dir: Path | None = None) -> list[Path]:
    """The figures one evaluation can draw, into ``out_dir/plots``: ``training.png`` when
    ``run_dir/metrics.jsonl`` has epoch records (every trained run), ``linearity.png`` when it has
    linearity records, ``eps_curve.png`` when the report has an ε-curve."""
    plots = Path(out_dir) / "plots"
    written = []
    label = str(report.get("name") or "model")
    curve = report.get("metrics", {}).get("eps_curve")
    if curve:
        threat = (report.get("metric_info", {}).get("eps_curve") or {}).get("threat") or {}
        written.append(plot_eps_curve({label: curve}, plots / "eps_curve.png", norm=threat.get("norm", "linf")))
    if run_dir is not None:
        epochs = read_training(Path(run_dir) / "metrics.jsonl")
        if epochs:
            written.append(plot_training(epochs, plots / "training.png"))
        series = read_linearity(Path(run_dir) / "metrics.jsonl")
        if series:
            written.append(plot_linearity({label: series}, plots / "linearity.png"))
    return written
