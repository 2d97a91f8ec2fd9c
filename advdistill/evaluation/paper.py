"""The IGDM paper's reported numbers beside a run: which cell a run reproduces, paper vs ours vs Δ.

The numbers live in ``recipes/paper/numbers.toml`` (installed as ``advdistill_recipes/paper/``),
keyed by cell: the recipe's path under ``recipes/paper/`` without ``.toml``. A run trained from
a paper recipe knows its cell through the recipe's ``name``, ``"paper-"`` + the cell with ``/``
written ``-`` (:func:`cell_name`). The name, not a key of its own: the recipe format's top-level
keys are fixed, and the name already travels with a run (recipe.json, report.json, the default
run directory); a renamed run is given its cell with ``compare --cell``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from functools import cache
from importlib.resources import files
from typing import Any

from advdistill.errors import DataError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PREFIX = "paper-"
#: the paper's columns, as report keys
METRICS = ("clean", "pgd20", "autoattack", "gd", "gc")
PAPER = "Lee, Cho & Kim, ICLR 2025, arXiv:2312.03286"


def cell_name(cell: str) -> str:
    """The ``name`` of a paper cell's recipe (and so its default run directory, ``runs/<name>``)."""
    return PREFIX + cell.replace("/", "-")


@cache
def load_numbers() -> dict[str, Any]:
    """``numbers.toml`` as data: ``{"teachers": {key: RobustBench name}, "cells": {cell: entry}}``."""
    text = (files("advdistill_recipes") / "paper" / "numbers.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def cells() -> dict[str, dict[str, Any]]:
    return load_numbers()["cells"]


def cell_of_name(name: str | None) -> str | None:
    """The paper cell a recipe ``name`` stands for, or None."""
    if not name or not name.startswith(PREFIX):
        return None
    return next((cell for cell in cells() if cell_name(cell) == name), None)


def check_cell(cell: str) -> str:
    """``cell`` if the paper has it, else a DataError naming the closest cells."""
    if cell not in cells():
        raise DataError(
            f"{cell!r} is not a cell of the IGDM paper's tables.{did_you_mean(cell, cells())} "
            "A cell is a recipe's path under recipes/paper/ without .toml, e.g. cifar100/resnet18/bdm_at/ard+igdm."
        )
    return cell


def _teacher_key(report: Mapping[str, Any]) -> str | None:
    teacher = report.get("teacher") or {}
    names = load_numbers()["teachers"]
    return next((key for key, name in names.items() if teacher.get("name") == name), None)


def paper_values(cell: str, report: Mapping[str, Any] | None = None) -> dict[str, float | None]:
    """The paper's numbers of ``cell``, one per metric (None: not reported).

    GD and GC of a teacher-free row depend on the teacher they were measured against: the
    report's teacher picks them (None when the report names none of the paper's teachers).
    """
    entry = cells()[check_cell(cell)]
    values: dict[str, float | None] = {}
    for key in (*METRICS, "minutes_per_epoch"):
        value = entry.get(key)
        if isinstance(value, Mapping):
            value = value.get(_teacher_key(report or {}) or "")
        values[key] = value
    return values


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare_to_paper(cell: str, report: Mapping[str, Any], minutes_per_epoch: float | None = None) -> dict[str, Any]:
    """Paper vs ours vs Δ (ours − paper) per metric for a run's ``report``; JSON-ready.

    ``minutes_per_epoch``: ours, for the cells whose paper row gives a time per epoch (Table 3).
    """
    paper = paper_values(cell, report)
    metrics = report.get("metrics", {})
    ours = {key: metrics.get(key) if _number(metrics.get(key)) else None for key in METRICS}
    ours["minutes_per_epoch"] = minutes_per_epoch if paper["minutes_per_epoch"] is not None else None
    delta = {
        key: round(ours[key] - paper[key], 6) if ours[key] is not None and paper[key] is not None else None
        for key in METRICS  # no Δ for the time: the paper does not name its GPU
    }
    return {"cell": cell, "tables": cells()[cell].get("tables", []), "paper": paper, "ours": ours,
            "delta": delta, "n_examples": report.get("n_examples")}


def _fmt(key: str, value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    digits = 3 if key in ("gd", "gc") else 2
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.replace("-", "−")


def paper_table(rows: Mapping[str, Mapping[str, Any]], display: Mapping[str, str]) -> str:
    """A markdown table: for each run (label → :func:`compare_to_paper` result) a paper, an ours and a Δ line."""
    keys = [*METRICS]
    if any(r["paper"]["minutes_per_epoch"] is not None for r in rows.values()):
        keys.append("minutes_per_epoch")
    names = {**display, "minutes_per_epoch": "T/E (min)"}
    lines = [
        f"Paper vs ours (IGDM paper, {PAPER}; Δ = ours − paper)",
        "",
        "| run | paper cell | | " + " | ".join(names.get(k, k) for k in keys) + " |",
        "|---|---|---|" + "---:|" * len(keys),
    ]
    notes = []
    for label, row in rows.items():
        tables = " and ".join(str(t) for t in row["tables"])
        where = f"{row['cell']} (Table{'s' * (len(row['tables']) > 1)} {tables})"
        for first, (kind, values, signed) in enumerate((("paper", row["paper"], False), ("ours", row["ours"], False),
                                                         ("Δ", row["delta"], True))):
            cells_ = [_fmt(k, values.get(k), signed) for k in keys]
            head = f"| {label} | {where} |" if first == 0 else "| | |"
            lines.append(f"{head} {kind} | " + " | ".join(cells_) + " |")
        n = row.get("n_examples")
        if isinstance(n, int) and n < 10000:
            notes.append(f"{label}: ours on {n} test images, the paper's on all 10,000.")
    if "minutes_per_epoch" in keys:
        notes.append("T/E: minutes per training epoch; the paper does not name its GPU, so no Δ.")
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def resolve_cells(labels: Sequence[str], reports: Mapping[str, Mapping[str, Any]], cell: str | None,
                  required: bool) -> dict[str, str]:
    """Each run's paper cell: ``cell`` for a single run, else from its recipe name.

    With ``required``, a run whose cell is unknown is a DataError.
    """
    if cell is not None:
        if len(labels) != 1:
            raise DataError("--cell names the paper cell of one run; give one run directory with it")
        return {labels[0]: check_cell(cell)}
    found = {label: cell_of_name(reports[label].get("name")) for label in labels}
    missing = [label for label, c in found.items() if c is None]
    if required and missing:
        raise DataError(
            f"no paper cell known for {', '.join(missing)}: a run knows its cell when it was trained from a "
            "recipe in recipes/paper/ (its name starts with 'paper-'); otherwise give it with --cell, "
            "e.g. --cell cifar100/resnet18/bdm_at/ard+igdm."
        )
    return {label: c for label, c in found.items() if c is not None}
