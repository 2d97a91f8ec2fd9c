"""``advdistill eval``: evaluate a run directory, or a checkpoint with a recipe."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advdistill import __version__
from advdistill.api import build, build_labeled, build_student, build_teacher, load_data
from advdistill.engine.checkpoint import load_weights, remove_stale_temp_files
from advdistill.errors import CheckpointError, RecipeError, RunDirectoryError
from advdistill.evaluation.plots import write_run_plots
from advdistill.evaluation.report import REPORT_SCHEMA_VERSION, write_report
from advdistill.evaluation.runner import run_metrics
from advdistill.recipe import Recipe, load_recipe
from advdistill.rundir import run_dir_lock
from advdistill.torch_utils import resolve_device

log = logging.getLogger(__name__)


def _metrics(recipe: Recipe, names: Sequence[str] | None) -> dict[str, Any]:
    """The recipe's [eval.metrics], or the named ones: labels of the recipe or metric kinds."""
    if not names:
        return build_labeled(recipe.eval.metrics)
    chosen = {}
    for name in names:
        if name in recipe.eval.metrics:
            chosen[name] = recipe.eval.metrics[name].build()
        else:
            chosen[name] = build("metric", name)
    return chosen


def _checkpoint_path(run_dir: Path, checkpoint: str) -> Path:
    ckpts = run_dir / "checkpoints"
    if checkpoint in ("last", "best"):
        path = ckpts / f"{checkpoint}.safetensors"
        if checkpoint == "best" and not path.exists():
            path = ckpts / "last.safetensors"
        return path
    return Path(checkpoint)


def evaluate_run(
    run_dir: str | Path,
    *,
    recipe: Recipe | None = None,
    checkpoint: str | None = None,
    student: nn.Module | None = None,
    teacher: nn.Module | None = None,
    metrics: Sequence[str] | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    out_dir: str | Path | None = None,
    device: str | None = None,
    show_progress: bool = True,
    splits: Any = None,
) -> dict[str, Any]:
    """Evaluate a run directory's checkpoint; writes ``report.json``/``report.md`` to ``out_dir``.

    :param recipe: defaults to the run's ``recipe.json``.
    :param checkpoint: ``"last"``, ``"best"`` or a path; defaults to ``[eval] checkpoint``.
    :param student: an already built student to load the weights into (saves a rebuild).
    :param splits: the recipe's data, if already loaded (saves reading it again).
    """
    run_dir = Path(run_dir)
    if recipe is None:
        recipe_path = run_dir / "recipe.json"
        if not recipe_path.exists():
            raise RecipeError(
                f"{run_dir} is not a run directory (no recipe.json); pass --recipe and --checkpoint"
            )
        recipe = load_recipe(recipe_path)
    checkpoint = checkpoint or recipe.eval.checkpoint
    path = _checkpoint_path(run_dir, checkpoint)
    return evaluate_checkpoint(
        recipe, path, student=student, teacher=teacher, metrics=metrics, limit=limit, batch_size=batch_size,
        out_dir=Path(out_dir) if out_dir else run_dir, device=device, show_progress=show_progress,
        run_dir=run_dir, splits=splits,
    )


def evaluate_checkpoint(
    recipe: Recipe,
    checkpoint: str | Path,
    *,
    student: nn.Module | None = None,
    out_dir: str | Path | None = None,
    device: str | None = None,
    run_dir: str | Path | None = None,
    splits: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` (weights of ``recipe``'s student) with the recipe's data and teacher.

    ``kwargs`` are those of :func:`evaluate_model`. With ``out_dir``, writes ``report.json``,
    ``report.md`` and ``plots/`` there; ``run_dir`` (default: the run directory holding the
    checkpoint, if any) supplies ``metrics.jsonl`` for the linearity plot.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise CheckpointError(f"Checkpoint not found: {checkpoint}")
    # the output directory is locked (and checked writable) before any data or model is built
    lock = run_dir_lock(out_dir, "eval") if out_dir is not None else contextlib.nullcontext()
    with lock:
        if out_dir is not None:
            remove_stale_temp_files([Path(out_dir), Path(out_dir) / "plots"])
        dev = resolve_device(device or recipe.train.device)
        if splits is None:
            splits = load_data(recipe)
        if student is None:
            student = build_student(recipe, splits.info)
        meta = load_weights(checkpoint, student.to(dev))
        report = evaluate_model(student, recipe, splits=splits, device=dev, **kwargs)
        report.update(checkpoint=str(checkpoint), epoch=meta.get("epoch"))
        if out_dir is not None:
            if run_dir is None and (checkpoint.parent.parent / "recipe.json").exists():
                run_dir = checkpoint.parent.parent
            _write_outputs(Path(out_dir), report, Path(run_dir) if run_dir is not None else None)
    return report


def _write_outputs(out_dir: Path, report: dict[str, Any], run_dir: Path | None) -> None:
    """report.json / report.md, and the plots; a figure that fails is reported, not fatal."""
    try:
        written = write_run_plots(out_dir, report, run_dir)
    except Exception as exc:  # a plotting problem must not lose the evaluation
        log.warning("could not draw the plots: %s: %s", type(exc).__name__, exc)
        report.setdefault("errors", {})["plots"] = f"{type(exc).__name__}: {exc}"
    else:
        if written:
            report["plots"] = [str(path.relative_to(out_dir)) for path in written]
    try:
        write_report(out_dir, report)
    except OSError as exc:  # a full disk: the previous report (if any) is intact, files are atomic
        raise RunDirectoryError(
            f"Writing the report into {out_dir} failed: {exc.strerror or exc}"
            f"{f' ({exc.filename})' if exc.filename else ''}. Nothing was half-written (an earlier report.json "
            "is intact); free space and run the evaluation again."
        ) from exc


def evaluate_model(
    model: nn.Module,
    recipe: Recipe,
    *,
    splits: Any = None,
    teacher: nn.Module | None = None,
    metrics: Sequence[str] | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run the recipe's metrics (or ``metrics``) on ``model`` and return the report dict."""
    dev = device if isinstance(device, torch.device) else resolve_device(device or recipe.train.device)
    splits = splits if splits is not None else load_data(recipe)
    if teacher is None:
        teacher = build_teacher(recipe, splits.info)
    if teacher is not None:
        teacher = teacher.to(dev)
    limit = limit if limit is not None else recipe.eval.limit
    values, errors, seconds = run_metrics(
        model.to(dev), splits.test_x, splits.test_y, _metrics(recipe, metrics), device=dev, teacher=teacher,
        batch_size=batch_size or recipe.eval.batch_size, limit=limit, seed=recipe.eval.seed,
        recipe=recipe, show_progress=show_progress,
    )
    n_test = int(splits.test_x.shape[0])
    return {
        "schema": REPORT_SCHEMA_VERSION,
        "name": recipe.name,
        "recipe_hash": recipe.hash,
        "model": recipe.student.name,
        "teacher": recipe.teacher.to_json() if recipe.teacher is not None else None,
        "dataset": splits.info.name,
        "n_examples": n_test if limit is None else min(limit, n_test),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev),
        "advdistill_version": __version__,
        "metrics": values,
        "errors": errors,
        "seconds": seconds,
    }


def evaluate(run_dir_or_model: Any, **kwargs: Any) -> dict[str, Any]:
    """Python API: ``evaluate(run_dir, ...)`` or ``evaluate(model, recipe=..., ...)``."""
    if isinstance(run_dir_or_model, (str, Path)):
        return evaluate_run(run_dir_or_model, **kwargs)
    recipe = kwargs.pop("recipe", None)
    if recipe is None:
        raise RecipeError("evaluate(model, ...) needs recipe= (for the data set and the metrics)")
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    return evaluate_model(run_dir_or_model, recipe, **kwargs)
