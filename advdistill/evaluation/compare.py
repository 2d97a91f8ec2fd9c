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
from advdistill.evaluation.formatting import format_metric, is_accuracy
from advdistill.evaluation.records import PerExample, paired_outcomes, read_per_example_file, reported_checkpoint
from advdistill.evaluation.report import DISPLAY
from advdistill.evaluation.threat import same_threat, threat_text
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


def _info(report: Mapping[str, Any]) -> dict[str, Any]:
    info = report.get("metric_info")
    return dict(info) if isinstance(info, Mapping) else {}


def checkpoint_cell(report: Mapping[str, Any]) -> str:
    """``last (epoch 6)``, ``best (epoch 4)``; "?" for a report that does not say."""
    checkpoint = report.get("checkpoint")
    if not isinstance(checkpoint, Mapping) or not checkpoint.get("name"):
        return "?"
    epoch = checkpoint.get("epoch", report.get("epoch"))
    return f"{checkpoint['name']}" + (f" (epoch {epoch})" if epoch is not None else "")


def images_of(report: Mapping[str, Any], columns: Sequence[str]) -> dict[str, int | None]:
    """Per column the run has: on how many test images it was measured (``metric_info``, else the
    report's ``n_examples``)."""
    info = _info(report)
    metrics = report.get("metrics", {})
    found = {}
    for column in columns:
        if _number(metrics.get(column)):
            n = (info.get(column) or {}).get("n_examples", report.get("n_examples"))
            found[column] = n if isinstance(n, int) else None
    return found


def images_cell(report: Mapping[str, Any], columns: Sequence[str]) -> str:
    """``1000``, or ``1000; AA 100`` when the run's numbers were measured on different images."""
    sizes = images_of(report, columns)
    known = [n for n in sizes.values() if n is not None]
    if not known:
        return str(report.get("n_examples", "?"))
    common = max(set(known), key=known.count)
    others = [f"{DISPLAY.get(c, c)} {n}" for c, n in sizes.items() if n is not None and n != common]
    return "; ".join([str(common), *others])


def threat_of(report: Mapping[str, Any], key: str) -> tuple[str, float] | None:
    """The (norm, ε) robust key ``key`` was measured at; None when the report does not say (schema 1)."""
    threat = (_info(report).get(key) or {}).get("threat")
    if isinstance(threat, Mapping) and isinstance(threat.get("eps"), (int, float)):
        return threat.get("norm"), float(threat["eps"])
    return None


def threat_cell(report: Mapping[str, Any], columns: Sequence[str]) -> str:
    """The threat model of the run's robust columns (``Linf ε = 8/255``), "?" when not recorded."""
    found = {c: threat_of(report, c) for c in columns if _number(report.get("metrics", {}).get(c))}
    robust = {c: t for c, t in found.items() if t is not None}
    unknown = [c for c in found if found[c] is None and is_accuracy(c) and c != "clean"]
    texts = list(dict.fromkeys(threat_text(*t) for t in robust.values()))
    if len(texts) > 1:
        return "; ".join(f"{DISPLAY.get(c, c)} {threat_text(*t)}" for c, t in robust.items())
    if texts:
        return texts[0]
    return "? (not recorded)" if unknown else "–"


def comparison_table(runs: Mapping[str, Mapping[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """A markdown table: one row per run (label → report): the reported checkpoint, the number of test
    images, the threat model, then the Clean/PGD-20/AA/GD/GC columns; "–" if absent."""
    header = "| run | checkpoint | images | threat model | " + " | ".join(DISPLAY.get(c, c) for c in columns) + " |"
    lines = [header, "|---|---|---:|---|" + "---:|" * len(columns)]
    for label, report in runs.items():
        metrics = report.get("metrics", {})
        info = _info(report)
        cells = [format_metric(c, metrics[c], info) if _number(metrics.get(c)) else "–" for c in columns]
        lines.append(f"| {label} | {checkpoint_cell(report)} | {images_cell(report, columns)} | "
                     f"{threat_cell(report, columns)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _is_robust(report: Mapping[str, Any], key: str) -> bool:
    """A robust accuracy: its threat model is recorded, or (a report from before ``metric_info``) it
    is one of the built-in attack accuracies."""
    if threat_of(report, key) is not None:
        return True
    return not _info(report).get(key) and key != "clean" and is_accuracy(key)


def robust_keys(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The scalar robust accuracies the runs report, in the order they first appear."""
    keys: dict[str, None] = {}
    for report in runs.values():
        for key, value in report.get("metrics", {}).items():
            if _number(value) and _is_robust(report, key):
                keys[key] = None
    return list(keys)


def check_threat_models(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Raise DataError when two runs report a robust key at different threat models (their numbers
    cannot be ranked); returns warnings for the runs that do not record theirs (schema-1 reports)."""
    conflicts, unknown = [], []
    for key in robust_keys(runs):
        measured = {label: threat_of(r, key) for label, r in runs.items() if _number(r.get("metrics", {}).get(key))}
        known = {label: t for label, t in measured.items() if t is not None}
        first = next(iter(known.values()), None)
        if first is not None and any(not same_threat(*first, *t) for t in known.values()):
            listed = ", ".join(f"{label} {threat_text(*t)}" for label, t in known.items())
            conflicts.append(f"{DISPLAY.get(key, key)}: {listed}")
        missing = [label for label, t in measured.items() if t is None]
        if missing and len(measured) > 1:
            unknown.append(f"{DISPLAY.get(key, key)} of {', '.join(missing)}")
    if conflicts:
        raise DataError(
            "the runs' robust accuracies were measured at different threat models, so they cannot be ranked: "
            + "; ".join(conflicts) + ". Evaluate them at one ε and norm (the robust metrics take the run's "
            "[attack] eps unless given: `advdistill eval RUN --set eval.metrics.<label>.eps=...`)."
        )
    if unknown:
        return [f"the threat model of {'; '.join(unknown)} is not recorded (evaluated by an older advdistill): "
                "check that the runs were attacked at the same ε, or evaluate them again"]
    return []


def comparability_warnings(runs: Mapping[str, Mapping[str, Any]], columns: Sequence[str] = COLUMNS) -> list[str]:
    """What the reader of the table must know: runs measured on different numbers of test images,
    runs reporting different checkpoints (or checkpoint rules)."""
    warnings = []
    sizes = {label: images_cell(r, columns) for label, r in runs.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{label} {n}" for label, n in sizes.items())
        warnings.append(f"the runs were evaluated on different numbers of test images ({listed}): their "
                        "accuracies differ in precision; the paired tests below use only the images both evaluated")
    checkpoints = {label: (r.get("checkpoint") or {}).get("name") if isinstance(r.get("checkpoint"), Mapping)
                   else None for label, r in runs.items()}
    if len(set(checkpoints.values())) > 1:
        listed = ", ".join(f"{label} {name or '?'}" for label, name in checkpoints.items())
        warnings.append(f"the runs report different checkpoints ({listed}): a `best` was selected on a "
                        "validation split, a `last` was not selected at all")
    return warnings


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
    warnings = check_threat_models(runs) + comparability_warnings(runs)
    for warning in warnings:
        log.warning("compare: %s", warning)
    table = comparison_table(runs)
    pairs = paired_comparisons(runs, dict(zip(runs, paths)))
    points, accuracy = scatter_points(runs)
    regression = plots.regression_lines(points, accuracy) if points else None
    rows = paper_rows(runs, paths, required=paper_required, cell=cell)
    result: dict[str, Any] = {"runs": {label: str(p) for label, p in zip(runs, paths)}, "table": table,
                              "warnings": warnings, "paired": pairs, "paired_table": paired_table(pairs),
                              "scatter_accuracy": accuracy, "regression": regression, "plots": []}
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
        threats = [(_info(runs[label]).get("eps_curve") or {}).get("threat") or {} for label in curves]
        norms = {threat.get("norm", "linf") for threat in threats}
        result["plots"].append(plots.plot_eps_curve(curves, figures / "eps_curve.png", norm="/".join(sorted(norms))))
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
    if points and regression is None:
        note += (f"\nNo regression line in the GD/GC scatter: {len(points)} run(s) have GD, GC and an accuracy; "
                 f"a line needs at least {plots.MIN_REGRESSION_POINTS}.\n")
    warned = "".join(f"**Warning:** {warning}.\n\n" for warning in warnings)
    paired_text = "\n" + result["paired_table"] if result["paired_table"] else ""
    beside = "\n" + result["paper_table"] if rows else ""
    atomic_write_text(out / "comparison.md", "# Comparison\n\n" + warned + table + note + paired_text + beside)
    summary = {
        "runs": {label: {"path": str(p), "metrics": runs[label]["metrics"], "checkpoint": checkpoint_cell(runs[label]),
                         "n_examples": runs[label].get("n_examples"), "metric_info": _info(runs[label])}
                 for label, p in zip(runs, paths)},
        "warnings": warnings,
        "paired": pairs,
        "scatter_accuracy": accuracy,
        "regression": regression,
    }
    if rows:
        summary["paper"] = rows
    atomic_write_text(out / "comparison.json", json.dumps(summary, indent=2) + "\n")
    return result
