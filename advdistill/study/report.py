"""study.json / study.md: per-cell means with t intervals, paired differences, McNemar, the sweep.

The numbers come from each finished run's ``report.json`` (its top-level ``metrics``) and,
for the per-image test, its ``per_example.safetensors``. docs/studies.md defines them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from advdistill import stats
from advdistill.errors import DataError
from advdistill.evaluation.records import (
    PerExample,
    paired_outcomes,
    read_per_example_file,
    records_path,
    reported_checkpoint,
)
from advdistill.evaluation.report import DISPLAY
from advdistill.io import atomic_write_text
from advdistill.study.runner import DONE, STATUS_TEXT, PlannedRun, run_state
from advdistill.study.spec import DEFAULT_METRICS, Study

log = logging.getLogger(__name__)

STUDY_SCHEMA = 1
#: report keys in percent (two decimals); every other metric gets three
PERCENT = {"clean", "pgd20", "autoattack", "pgd_l1", "pgd_l2", "transfer_vmi_fgsm"}
NO_RECORDS = "has no per_example.safetensors"
METHOD_NAMES = {"exact": "exact binomial", "chi2_cc": "χ² with continuity correction"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finished_reports(runs: Sequence[PlannedRun]) -> dict[str, dict[str, Any]]:
    """label -> report.json of every cell run whose report matches the recipe the study gives now."""
    found = {}
    for run in runs:
        if run.cell is None or run_state(run.directory, run.recipe_hash)[0] != DONE:
            continue
        try:
            found[run.label] = json.loads((run.directory / "report.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("%s: unreadable report.json (%s)", run.directory, exc)
    return found


class _Records:
    """Reads each run's per-example records once; a missing or unreadable file is a reason, not an error."""

    def __init__(self) -> None:
        self._cache: dict[Path, PerExample | str] = {}

    def get(self, run: PlannedRun) -> PerExample | str:
        if run.directory not in self._cache:
            if not records_path(run.directory).exists():
                self._cache[run.directory] = f"{run.label} {NO_RECORDS}"
            else:
                try:
                    self._cache[run.directory] = read_per_example_file(run.directory)
                except DataError as exc:
                    self._cache[run.directory] = f"{run.label}: {exc}"
        return self._cache[run.directory]


def pooled_mcnemar(pairs: Sequence[tuple[int, PlannedRun, dict, PlannedRun, dict]], metric: str,
                   records: _Records) -> dict[str, Any]:
    """McNemar's test on the discordant counts summed over seeds (same test images paired).

    ``pairs``: (seed, first run, its report, second run, its report). Each seed's two runs are
    paired image by image (:func:`advdistill.evaluation.records.paired_outcomes`, on the
    checkpoint each report gives). Seeds whose records are missing or cannot be paired are
    listed under ``missing``; with none left the result has ``p_value`` None and a reason.
    """
    total_b = total_c = n_pairs = 0
    per_seed, missing = {}, {}
    all_files, metric_seen = True, False
    for seed, run_a, report_a, run_b, report_b in pairs:
        found = [records.get(run_a), records.get(run_b)]
        reason = "; ".join(r for r in found if isinstance(r, str)) or None
        if reason is not None:
            missing[str(seed)] = reason
            all_files = False
            continue
        metric_seen |= any(metric in keyed for rec in found for keyed in rec.records.values())
        try:
            outcomes = paired_outcomes(found[0], reported_checkpoint(report_a, found[0]),
                                       found[1], reported_checkpoint(report_b, found[1]))
        except DataError as exc:
            missing[str(seed)] = f"{run_a.label} and {run_b.label}: {exc}"
            continue
        outcome = outcomes.get(metric)
        if outcome is None:
            lacking = [run.label for run, rec, report in ((run_a, found[0], report_a), (run_b, found[1], report_b))
                       if metric not in rec.records.get(reported_checkpoint(report, rec), {})]
            missing[str(seed)] = "; ".join(f"{label}: no per-image record of {metric!r}" for label in lacking)
            continue
        b, c = outcome.only_a, outcome.only_b
        per_seed[str(seed)] = {"b": b, "c": c, "n": outcome.n}
        total_b, total_c, n_pairs = total_b + b, total_c + c, n_pairs + outcome.n
    if not per_seed:
        # files present everywhere and none records the metric: it is not a per-image metric (GD, GC)
        return {"p_value": None, "per_image": not (pairs and all_files and not metric_seen),
                "reason": _reason(missing.values()) or "no finished pair of runs", "missing": missing}
    test = stats.mcnemar(total_b, total_c)
    return {**test.as_dict(), "per_image": True, "seeds": [int(s) for s in per_seed], "n_pairs": n_pairs,
            "per_seed": per_seed, "missing": missing}


def _reason(reasons: Sequence[str]) -> str:
    """One short sentence for why no seed could be tested; runs without records are counted, not listed."""
    found = list(dict.fromkeys(part for r in reasons for part in r.split("; ")))
    names = [part.removesuffix(f" {NO_RECORDS}") for part in found if part.endswith(NO_RECORDS)]
    others = [part for part in found if not part.endswith(NO_RECORDS)]
    parts = []
    if names:
        example = ", ".join(names[:2]) + (", ..." if len(names) > 2 else "")
        parts.append(f"{len(names)} run{'s' if len(names) > 1 else ''} without per_example.safetensors ({example})")
    return "; ".join(parts + others)


def summarize(study: Study, runs: Sequence[PlannedRun]) -> dict[str, Any]:
    """Everything study.json holds (see docs/studies.md), from the run directories as they are now."""
    reports = _finished_reports(runs)
    cell_runs = {(run.cell, run.seed): run for run in runs if run.cell is not None}
    values: dict[str, dict[str, dict[int, float]]] = {cell: {} for cell in study.cells}
    for (cell, seed), run in cell_runs.items():
        for key, value in reports.get(run.label, {}).get("metrics", {}).items():
            if _number(value):
                values[cell].setdefault(key, {})[seed] = float(value)
    present = {key for per_cell in values.values() for key in per_cell}
    metrics = list(study.metrics) if study.metrics is not None else [m for m in DEFAULT_METRICS if m in present]
    unreported = [m for m in metrics if m not in present] if reports else []

    cells = {}
    for cell in study.cells:
        seeds_done = [seed for seed in study.seeds if cell_runs[cell, seed].label in reports]
        cells[cell] = {
            "seeds_done": seeds_done,
            "metrics": {
                m: {**stats.mean_ci(values[cell].get(m, {}).values()).as_dict(),
                    "values": {str(s): v for s, v in values[cell].get(m, {}).items()}}
                for m in metrics
            },
        }

    records = _Records()
    pairs = []
    for first, second in study.pairs:
        both = [(seed, cell_runs[first, seed], reports[cell_runs[first, seed].label],
                 cell_runs[second, seed], reports[cell_runs[second, seed].label])
                for seed in study.seeds
                if cell_runs[first, seed].label in reports and cell_runs[second, seed].label in reports]
        rows = {}
        for m in metrics:
            paired = stats.paired_differences(values[first].get(m, {}), values[second].get(m, {}))
            rows[m] = {
                "differences": {str(s): d for s, d in paired.differences.items()},
                **paired.summary.as_dict(),
                "mcnemar": pooled_mcnemar(both, m, records),
            }
        pairs.append({"first": first, "second": second, "metrics": rows})

    sweep = None
    if study.sweep is not None:
        sw = study.sweep
        sweep = {"cell": sw.cell, "key": sw.key, "name": sw.name,
                 "rows": [{"value": value, "cell": label, "metrics": cells[label]["metrics"]}
                          for value, label in zip(sw.values, sw.labels)]}

    return {
        "schema": STUDY_SCHEMA,
        "name": study.name,
        "description": study.description,
        "study_file": str(study.path),
        "seeds": list(study.seeds),
        "metrics": metrics,
        "unreported_metrics": unreported,
        "reported_keys": sorted(present),
        "level": 0.95,
        "runs": [_run_entry(run, run.label in reports) for run in runs],
        "cells": cells,
        "pairs": pairs,
        "sweep": sweep,
    }


def _run_entry(run: PlannedRun, has_report: bool) -> dict[str, Any]:
    entry = {"label": run.label, "cell": run.cell, "setup": run.setup, "seed": run.seed,
             "directory": str(run.directory), "recipe_hash": run.recipe_hash,
             "state": run_state(run.directory, run.recipe_hash)[0]}
    if run.outcome is not None:
        entry.update(outcome=run.outcome, seconds=run.seconds, error=run.error)
    return entry


# -- markdown -------------------------------------------------------------------------------------

def _decimals(metric: str) -> int:
    return 2 if metric in PERCENT else 3


def mean_text(summary: Mapping[str, Any], metric: str, signed: bool = False) -> str:
    """``mean ± half-width``; ``mean (one seed: no CI)`` for n = 1; ``–`` for n = 0."""
    if not summary.get("n"):
        return "–"
    d = _decimals(metric)
    mean = f"{summary['mean']:+.{d}f}" if signed else f"{summary['mean']:.{d}f}"
    if summary.get("half_width") is None:
        return f"{mean} (one seed: no CI)"
    return f"{mean} ± {summary['half_width']:.{d}f}"


def p_text(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def mcnemar_text(result: Mapping[str, Any]) -> str:
    if result.get("p_value") is None:
        return f"n/a: {result['reason']}" if result.get("per_image", True) else "– (not a per-image metric)"
    seeds = result["seeds"]
    text = (f"p = {p_text(result['p_value'])} ({METHOD_NAMES[result['method']]}; b = {result['b']}, "
            f"c = {result['c']}; {len(seeds)} seed{'s' if len(seeds) > 1 else ''}, {result['n_pairs']} image pairs)")
    if result.get("missing"):
        text += f"; left out: {'; '.join(f'seed {s}: {r}' for s, r in result['missing'].items())}"
    return text


def _name(metric: str) -> str:
    return DISPLAY.get(metric, metric)


def markdown(summary: Mapping[str, Any]) -> str:
    """study.md: the cell table, each pair, the sweep, and the definitions used."""
    metrics = summary["metrics"]
    runs = summary["runs"]
    done = sum(r["state"] == DONE for r in runs)
    lines = [f"# Study: {summary['name']}", ""]
    if summary.get("description"):
        lines += [summary["description"], ""]
    lines += [f"Seeds {', '.join(map(str, summary['seeds']))}; {done} of {len(runs)} runs finished "
              f"(study file `{summary['study_file']}`). Values: mean ± half-width of the 95% Student t "
              "confidence interval over seeds (docs/studies.md).", ""]
    unfinished = [r for r in runs if r["state"] != DONE]
    if unfinished:
        lines += ["Not finished: " + ", ".join(
            f"{r['label']} ({r.get('outcome') or STATUS_TEXT[r['state']]}{': ' + r['error'] if r.get('error') else ''})"
            for r in unfinished), ""]
    if summary.get("unreported_metrics"):
        lines += [f"No finished run reports {', '.join(summary['unreported_metrics'])} "
                  f"(reported keys: {', '.join(summary['reported_keys'])}).", ""]
    lines += ["## Cells", "", "| cell | seeds | " + " | ".join(_name(m) for m in metrics) + " |",
              "|---|---:|" + "---:|" * len(metrics)]
    for cell, row in summary["cells"].items():
        n_done = len(row["seeds_done"])
        cells = []
        for m in metrics:
            text = mean_text(row["metrics"][m], m)
            if row["metrics"][m]["n"] not in (0, n_done):
                text += f" (n = {row['metrics'][m]['n']})"
            cells.append(text)
        lines.append(f"| {cell} | {n_done} | " + " | ".join(cells) + " |")
    lines.append("")
    for pair in summary["pairs"]:
        first, second = pair["first"], pair["second"]
        lines += [f"## {second} − {first}", "",
                  f"Per-seed difference d = {second} − {first}; McNemar's test pools the per-image "
                  "discordant counts over seeds (b: only the first right, c: only the second right).", "",
                  f"| metric | {first} | {second} | d per seed | mean d ± 95% CI | McNemar (pooled) |",
                  "|---|---:|---:|---|---:|---|"]
        for m in metrics:
            row = pair["metrics"][m]
            d = _decimals(m)
            per_seed = ", ".join(f"{s}: {v:+.{d}f}" for s, v in row["differences"].items()) or "–"
            lines.append(
                f"| {_name(m)} | {mean_text(summary['cells'][first]['metrics'][m], m)} "
                f"| {mean_text(summary['cells'][second]['metrics'][m], m)} | {per_seed} "
                f"| {mean_text(row, m, signed=True)} | {mcnemar_text(row['mcnemar'])} |"
            )
        lines.append("")
    sweep = summary.get("sweep")
    if sweep:
        lines += [f"## Sweep: `{sweep['key']}` on {sweep['cell']}", "",
                  f"| {sweep['name']} | seeds | " + " | ".join(_name(m) for m in metrics) + " |",
                  "|---:|---:|" + "---:|" * len(metrics)]
        for row in sweep["rows"]:
            n_done = len(summary["cells"][row["cell"]]["seeds_done"])
            value = row["value"] if not isinstance(row["value"], (dict, list)) else json.dumps(row["value"])
            lines.append(f"| {value} | {n_done} | " + " | ".join(mean_text(row["metrics"][m], m) for m in metrics)
                         + " |")
        lines.append("")
    if summary.get("plots"):
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in summary["plots"]] + [""]
        if summary.get("scatter_accuracy") == "pgd20":
            lines += ["The GD/GC scatter uses PGD-20: not every cell with GD and GC has AutoAttack.", ""]
    lines += [
        "## Definitions", "",
        "- mean ± t_{0.975, n−1} · s / √n over the n seeds with a result (s: sample standard deviation, n − 1); "
        "one seed gives no interval.",
        "- d per seed: the second cell's value minus the first's for the same seed; its mean ± t interval as above.",
        "- McNemar: b and c summed over seeds (each seed pairs the two runs' records of the same test images); "
        f"exact two-sided binomial test when b + c < {stats.EXACT_BELOW}, else χ² = (|b − c| − 1)² / (b + c) "
        "with one degree of freedom.",
        "",
    ]
    return "\n".join(lines)


def write_study_report(study: Study, runs: Sequence[PlannedRun], out_dir: str | Path,
                       with_plots: bool = True) -> dict[str, Any]:
    """Write study.json, study.md (and plots/ with ``with_plots``) into ``out_dir``; returns the summary."""
    out = Path(out_dir)
    summary = summarize(study, runs)
    if with_plots:
        from advdistill.study.plots import scatter_points, write_study_plots

        summary["scatter_accuracy"] = scatter_points(summary)[1]
        try:
            summary["plots"] = [str(p.relative_to(out)) for p in write_study_plots(summary, out / "plots")]
        except Exception as exc:  # a figure that fails must not lose the tables
            log.warning("could not draw the study plots: %s: %s", type(exc).__name__, exc)
            summary["plot_error"] = f"{type(exc).__name__}: {exc}"
    atomic_write_text(out / "study.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "study.md", markdown(summary))
    return summary
