"""``advdistill compare``: one paper-style table over several runs, paired tests image by image,
and the Fig. 4 scatter."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from advdistill.errors import DataError
from advdistill.evaluation import paper, plots
from advdistill.evaluation.records import PerExample, paired_outcomes, read_per_example_file, reported_checkpoint
from advdistill.evaluation.report import DISPLAY, format_value
from advdistill.io import atomic_write_text

log = logging.getLogger(__name__)

#: the columns of the paper's Tables 2–4
COLUMNS = ("clean", "pgd20", "autoattack", "gd", "gc")
#: up to this many runs every pair is tested; with more, each run is tested against the first
ALL_PAIRS_UP_TO = 6


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


def run_pairs(labels: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs of runs to test: all of them up to :data:`ALL_PAIRS_UP_TO` runs, else each run
    against the first (the baseline)."""
    if len(labels) <= ALL_PAIRS_UP_TO:
        return list(itertools.combinations(labels, 2))
    return [(labels[0], other) for other in labels[1:]]


def paired_comparisons(runs: Mapping[str, Mapping[str, Any]], paths: Mapping[str, Path]) -> list[dict[str, Any]]:
    """For each pair of runs (:func:`run_pairs`): per shared metric, the paired difference on the
    test images both evaluated and its exact McNemar p-value; a pair that cannot be paired
    (no records, different test sets) has ``"skipped"`` with the reason."""
    loaded: dict[str, PerExample] = {}
    missing: dict[str, str] = {}
    for label, path in paths.items():
        try:
            loaded[label] = read_per_example_file(path if path.is_dir() else path.parent)
        except DataError as exc:
            missing[label] = str(exc)
    pairs = []
    for a, b in run_pairs(list(runs)):
        entry: dict[str, Any] = {"a": a, "b": b}
        absent = [label for label in (a, b) if label in missing]
        if absent:
            entry["skipped"] = "; ".join(f"{label}: {missing[label]}" for label in absent)
            pairs.append(entry)
            continue
        entry["checkpoint_a"] = reported_checkpoint(runs[a], loaded[a])
        entry["checkpoint_b"] = reported_checkpoint(runs[b], loaded[b])
        try:
            outcomes = paired_outcomes(loaded[a], entry["checkpoint_a"], loaded[b], entry["checkpoint_b"])
        except DataError as exc:
            entry["skipped"] = str(exc)
        else:
            if outcomes:
                ordered = [k for k in DISPLAY if k in outcomes] + sorted(k for k in outcomes if k not in DISPLAY)
                entry["metrics"] = {key: outcomes[key].as_dict() for key in ordered}
            else:
                entry["skipped"] = "no metric recorded in both evaluations"
        pairs.append(entry)
    return pairs


def _p_value(p: float) -> str:
    if p == 0.0:
        return "< 1e-300"
    return f"{p:.3f}" if p >= 1e-3 else f"{p:.1e}"


def paired_table(pairs: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: one row per pair and shared metric; a line per pair that could not be paired."""
    if not pairs:
        return ""
    lines = [
        "## Paired differences on the same test images (exact McNemar test)",
        "",
        "B − A in percentage points over the images both runs evaluated; only A / only B: images one "
        "gets right (robust) and the other not; p: two-sided exact McNemar test on those two counts "
        "(not adjusted for the number of comparisons).",
        "",
        "| A | B | metric | images | A | B | B − A | only A | only B | p |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for pair in pairs:
        if "skipped" in pair:
            notes.append(f"- {pair['a']} vs {pair['b']}: not paired: {pair['skipped']}")
            continue
        a, b = f"{pair['a']} ({pair['checkpoint_a']})", f"{pair['b']} ({pair['checkpoint_b']})"
        for key, o in pair["metrics"].items():
            lines.append(
                f"| {a} | {b} | {DISPLAY.get(key, key)} | {o['n']} | {o['accuracy_a']:.2f} | {o['accuracy_b']:.2f} | "
                f"{o['difference']:+.2f} | {o['only_a']} | {o['only_b']} | {_p_value(o['p_value'])} |"
            )
    if len(lines) == 6:  # no pair had records
        lines = lines[:4]
    return "\n".join([*lines, "", *notes]).rstrip() + "\n"


def minutes_per_epoch(run_dir: Path) -> float | None:
    """The median training time of an epoch in ``metrics.jsonl`` (its ``seconds``), in minutes."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    seconds = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        if record.get("event") == "epoch" and _number(record.get("seconds")):
            seconds.append(record["seconds"])
    return round(sorted(seconds)[len(seconds) // 2] / 60, 3) if seconds else None


def paper_rows(runs: Mapping[str, Mapping[str, Any]], paths: Sequence[Path], *, required: bool = False,
               cell: str | None = None) -> dict[str, dict[str, Any]]:
    """Paper vs ours vs Δ for each run whose IGDM-paper cell is known (:mod:`advdistill.evaluation.paper`)."""
    cells = paper.resolve_cells(list(runs), runs, cell, required)
    dirs = dict(zip(runs, (p if p.is_dir() else p.parent for p in paths)))
    return {label: paper.compare_to_paper(c, runs[label], minutes_per_epoch(dirs[label])) for label, c in cells.items()}


def compare_runs(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None, *, paper_required: bool = False,
                 cell: str | None = None) -> dict[str, Any]:
    """Read each run's report.json (and per_example.safetensors); returns the table, the paired
    tests and, with ``out_dir``, writes
    ``comparison.md``, ``comparison.json`` and ``plots/`` (gd_gc_vs_aa.png, and eps_curve.png /
    linearity.png overlays when the runs have that data).

    Runs trained from a recipe of ``recipes/paper/`` also get the paper's numbers beside theirs
    (``paper_table``); ``paper_required`` makes an unknown cell an error, ``cell`` names it for one run.
    """
    if not run_dirs:
        raise DataError("compare needs at least one run directory")
    paths = [Path(p) for p in run_dirs]
    runs = {label: load_report(p) for label, p in zip(_labels(paths), paths)}
    table = comparison_table(runs)
    pairs = paired_comparisons(runs, dict(zip(runs, paths)))
    points, accuracy = scatter_points(runs)
    rows = paper_rows(runs, paths, required=paper_required, cell=cell)
    result: dict[str, Any] = {"runs": {label: str(p) for label, p in zip(runs, paths)}, "table": table,
                              "paired": pairs, "paired_table": paired_table(pairs),
                              "scatter_accuracy": accuracy, "plots": []}
    if rows:
        result.update(paper=rows, paper_table=paper.paper_table(rows, DISPLAY))
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
    paired_text = "\n" + result["paired_table"] if result["paired_table"] else ""
    beside = "\n" + result["paper_table"] if rows else ""
    atomic_write_text(out / "comparison.md", "# Comparison\n\n" + table + note + paired_text + beside)
    summary = {
        "runs": {label: {"path": str(p), "metrics": runs[label]["metrics"]} for label, p in zip(runs, paths)},
        "paired": pairs,
        "scatter_accuracy": accuracy,
    }
    if rows:
        summary["paper"] = rows
    atomic_write_text(out / "comparison.json", json.dumps(summary, indent=2) + "\n")
    return result
