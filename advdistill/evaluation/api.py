"""``advdistill eval``: evaluate a run directory, or a checkpoint with a recipe."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from advdistill.components import build, build_labeled, build_student, build_teacher, load_data
from advdistill.engine.checkpoint import load_state_strict, read_metadata, read_tensors, remove_stale_temp_files
from advdistill.engine.distributed import DistInfo, from_main, setup, teardown
from advdistill.errors import RecipeError, RunDirectoryError
from advdistill.evaluation.checkpoints import CheckpointChoice, describe, explicit, run_checkpoints, weights_identity
from advdistill.evaluation.checks import checks_line, run_checks
from advdistill.evaluation.context import EvalContext
from advdistill.evaluation.info import mark_records, metric_info, utc_now
from advdistill.evaluation.merge import merge_reports, read_previous, with_reported_row
from advdistill.evaluation.plots import write_run_plots
from advdistill.evaluation.records import RECORDS_FILE, read_per_example_file, split_fingerprint, write_per_example
from advdistill.evaluation.report import REPORT_SCHEMA_VERSION, write_report
from advdistill.evaluation.runner import progress, run_metrics
from advdistill.evaluation.sharding import evaluate_parts
from advdistill.evaluation.threat import resolve_threat
from advdistill.recipe import Recipe, load_recipe
from advdistill.rundir import run_dir_lock
from advdistill.torch_utils import resolve_device
from advdistill.version import __version__

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


def _metric_kinds(recipe: Recipe, labels: Sequence[str]) -> dict[str, str]:
    """The registered metric kind behind each label (a recipe label, or a kind named directly)."""
    return {label: recipe.eval.metrics[label].name if label in recipe.eval.metrics else label for label in labels}


def _metric_labels(recipe: Recipe, names: Sequence[str] | None) -> list[str]:
    return list(names) if names else list(recipe.eval.metrics)


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
    checks: bool | None = None,
) -> dict[str, Any]:
    """Evaluate a run directory; writes ``report.json``, ``report.md``, ``per_example.safetensors``
    and ``plots/`` to ``out_dir`` (default: the run directory), adding to a report already there
    key by key (each number with its checkpoint, images and time; see :mod:`.merge`).

    Without ``checkpoint``, ``last``, ``best`` and ``ema`` are evaluated (those the run has; one row
    each in the report) and the report's ``metrics`` are those of ``[eval] checkpoint``. Under
    ``torchrun`` every process must call it: each evaluates its part of the test set, process 0
    writes the files, and every process returns the merged report.

    :param recipe: defaults to the run's ``recipe.json``.
    :param checkpoint: ``"last"``, ``"best"``, ``"ema"`` or a path: evaluate that one only.
    :param student: an already built student to load the weights into (saves a rebuild).
    :param splits: the recipe's data, if already loaded (saves reading it again).
    :param checks: run the sanity checks after the metrics; None: the recipe's ``[eval] checks``.
    """
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir
    if recipe is None:
        recipe_path = run_dir / "recipe.json"
        if not recipe_path.exists():
            raise RecipeError(f"{run_dir} is not a run directory (no recipe.json); pass --recipe and --checkpoint")
        recipe = load_recipe(recipe_path)
    with joined_process_group(recipe, device) as (dist, device_spec), _writing_into(out, dist):
        choices, reported, note = from_main(
            dist, lambda: run_checkpoints(run_dir, checkpoint, recipe.eval.checkpoint), "to find the checkpoints"
        )
        return _evaluate_choices(
            recipe, choices, reported, note=note, student=student, teacher=teacher, metrics=metrics, limit=limit,
            batch_size=batch_size, out_dir=out, device=device_spec, show_progress=show_progress, run_dir=run_dir,
            splits=splits, checks=checks, dist=dist,
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
    ``report.md``, ``per_example.safetensors`` and ``plots/`` there; ``run_dir`` (default: the
    run directory holding the checkpoint, if any) supplies ``metrics.jsonl`` for the linearity plot.
    Under ``torchrun``, sharded as :func:`evaluate_run`.
    """
    out = Path(out_dir) if out_dir else None
    with joined_process_group(recipe, device) as (dist, device_spec), _writing_into(out, dist):
        choice = explicit(checkpoint)
        if run_dir is None and (choice.path.parent.parent / "recipe.json").exists():
            run_dir = choice.path.parent.parent
        return _evaluate_choices(
            recipe, [choice], choice.name, note=None, student=student, out_dir=out, device=device_spec,
            run_dir=Path(run_dir) if run_dir is not None else None, splits=splits, dist=dist, **kwargs,
        )


@contextlib.contextmanager
def joined_process_group(
    recipe: Recipe, device: str | torch.device | None = None
) -> Iterator[tuple[DistInfo, str | torch.device]]:
    """Under torchrun: the process group (joined here, with ``train.dist_timeout_min``, unless already
    joined, e.g. by training; left on exit if joined here) and this process's device. Outside
    torchrun: a single process and ``device`` (default: the recipe's)."""
    spec = device if isinstance(device, torch.device) else device or recipe.train.device
    if isinstance(spec, torch.device):
        dist, _ = setup("cpu" if spec.type == "cpu" else "cuda", recipe.train.dist_timeout_min)
    else:
        dist, spec = setup(spec, recipe.train.dist_timeout_min)
    try:
        yield dist, spec
    finally:
        teardown(dist)


@contextlib.contextmanager
def _writing_into(out_dir: Path | None, dist: DistInfo) -> Iterator[None]:
    """Lock ``out_dir`` (checked writable) before anything is read or built; stale temp files go.

    Process 0 alone writes; its failure to lock is raised in every process.
    """
    with contextlib.ExitStack() as stack:
        if out_dir is not None:
            def lock() -> None:
                stack.enter_context(run_dir_lock(out_dir, "eval"))
                remove_stale_temp_files([out_dir, out_dir / "plots"])

            from_main(dist, lock, "to lock the output directory")
        yield


def _evaluate_choices(
    recipe: Recipe,
    choices: Sequence[CheckpointChoice],
    reported: str,
    *,
    note: str | None,
    student: nn.Module | None,
    out_dir: Path | None,
    device: str | None,
    run_dir: Path | None,
    splits: Any,
    teacher: nn.Module | None = None,
    dist: DistInfo | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Evaluate each checkpoint (weights identical to one already evaluated are not evaluated
    again), then assemble one report whose ``metrics`` are the ``reported`` checkpoint's.

    With several processes (``dist``), process 0 reads the checkpoints and hands them over (the
    others may not see its files), every process evaluates its part, and process 0 writes."""
    dist = dist or DistInfo()
    dev = device if isinstance(device, torch.device) else resolve_device(device or recipe.train.device)
    if not dist.is_main:
        out_dir = None
        kwargs["show_progress"] = False
    if splits is None:
        splits = load_data(recipe)
    if student is None:
        student = build_student(recipe, splits.info)
    student = student.to(dev)
    if teacher is None:
        teacher = build_teacher(recipe, splits.info)  # once for every checkpoint
    rows: dict[str, dict[str, Any]] = {}
    records: dict[str, dict[str, Any]] = {}
    # process 0 reads them (the others may not see its files); weights: which weights each row's
    # numbers and records come from (changed weights: older numbers go)
    metadata, weights = from_main(dist, lambda: _identities(choices), "to read the checkpoints' metadata")
    states: dict[str, dict[str, torch.Tensor]] = {}
    for choice in choices:
        state = from_main(dist, lambda path=choice.path: read_tensors(path), "to read a checkpoint")
        twin = next((name for name, seen in states.items() if _same_weights(seen, state)), None)
        if twin is not None:
            log.info("%s holds the same weights as %s: not evaluated again", choice.path, twin)
            progress.info("checkpoint %s: the same weights as %s, not evaluated again", choice.name, twin)
            rows[choice.name], records[choice.name] = {**rows[twin], "same_weights_as": twin}, records[twin]
            continue
        _announce(choice, metadata[choice.name], recipe, splits, kwargs)
        load_state_strict(student, state, source=str(choice.path))
        records[choice.name] = {}
        rows[choice.name] = evaluate_model(student, recipe, splits=splits, teacher=teacher, device=dev,
                                           records=records[choice.name], dist=dist, **kwargs)
        states[choice.name] = state
    report = _combine(rows, choices, metadata, reported, note, weights)
    report["test_sha256"] = split_fingerprint(splits.test_x, splits.test_y)
    if out_dir is not None:
        # the numbers already in out_dir stay, key by key (evaluation/merge.py)
        report = merge_reports(read_previous(out_dir), report)
        with _reporting_write_failures(out_dir):
            path = write_per_example(
                out_dir, records, index=torch.arange(rows[reported]["n_examples"]), dataset=splits.info.name,
                recipe_hash=recipe.hash, test_sha256=report["test_sha256"],
                n_test=int(splits.test_x.shape[0]), weights=weights,
            )
        mark_records(report, read_per_example_file(path))
        report["per_example"] = RECORDS_FILE
        _write_outputs(out_dir, report, run_dir)
    return report


def _identities(choices: Sequence[CheckpointChoice]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each checkpoint's metadata and the identity of its weights, by checkpoint name."""
    metadata = {choice.name: read_metadata(choice.path) for choice in choices}
    return metadata, {choice.name: weights_identity(choice.path, metadata[choice.name]) for choice in choices}


def _announce(choice: CheckpointChoice, metadata: dict[str, Any], recipe: Recipe, splits: Any,
              options: dict[str, Any]) -> None:
    """The progress line that opens a checkpoint's evaluation: which one, which metrics, how many images."""
    n_test = int(splits.test_x.shape[0])
    limit = options.get("limit") if options.get("limit") is not None else recipe.eval.limit
    n = n_test if limit is None else min(limit, n_test)
    epoch = f" (epoch {metadata['epoch']})" if metadata.get("epoch") is not None else ""
    labels = _metric_labels(recipe, options.get("metrics"))
    progress.info("checkpoint %s%s: %s on %d test images", choice.name, epoch, ", ".join(labels), n)


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


def _combine(
    rows: dict[str, dict[str, Any]],
    choices: Sequence[CheckpointChoice],
    metadata: dict[str, dict[str, Any]],
    reported: str,
    note: str | None,
    weights: dict[str, str],
) -> dict[str, Any]:
    """One report: the reported checkpoint's evaluation at the top, every checkpoint in ``checkpoints``
    (each number's ``metric_info`` names its checkpoint and epoch)."""
    by_name = {choice.name: choice for choice in choices}
    report = {k: v for k, v in rows[reported].items() if k != "same_weights_as"}
    report["checkpoint"] = describe(by_name[reported], metadata[reported])
    if note:
        report["checkpoint"]["note"] = note
    report["epoch"] = metadata[reported].get("epoch")
    rows_out = {}
    for choice in choices:
        row = rows[choice.name]
        epoch = metadata[choice.name].get("epoch")
        # copies: errors added to the top level later (plots) belong to the report, not to a row
        entry = {**describe(choice, metadata[choice.name]), "weights": weights[choice.name],
                 "metrics": dict(row["metrics"]), "errors": dict(row["errors"]), "seconds": dict(row["seconds"]),
                 "metric_info": {key: {**info, "checkpoint": choice.name, "epoch": epoch}
                                 for key, info in row["metric_info"].items()}}
        if "checks" in row:
            entry["checks"] = row["checks"]
        del entry["name"]
        if "same_weights_as" in row:
            entry["same_weights_as"] = row["same_weights_as"]
        rows_out[choice.name] = entry
    return with_reported_row(report, rows_out)


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
    with _reporting_write_failures(out_dir):
        write_report(out_dir, report)


@contextlib.contextmanager
def _reporting_write_failures(out_dir: Path) -> Iterator[None]:
    """A failed write (a full disk) becomes one message; the files are atomic, so earlier ones are intact."""
    try:
        yield
    except (OSError, SafetensorError) as exc:
        reason = exc.strerror or exc if isinstance(exc, OSError) else exc
        where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
        raise RunDirectoryError(
            f"Writing the evaluation's files into {out_dir} failed: {reason}{where}. Nothing was half-written "
            "(an earlier report.json and per_example.safetensors are intact); free space and run the "
            "evaluation again."
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
    records: dict[str, torch.Tensor] | None = None,
    checks: bool | None = None,
    dist: DistInfo | None = None,
) -> dict[str, Any]:
    """Run the recipe's metrics (or ``metrics``) on ``model``, then the sanity checks, and return
    the report dict.

    :param records: filled with the per-image flags the metrics record (report key → bool (N,)).
    :param checks: run the sanity checks (``[eval.checks]``); None: the recipe's ``[eval] checks``.
    :param dist: the processes of a torchrun job (every one calls this): each evaluates its part of
        the test images (:mod:`advdistill.evaluation.sharding`); the checks run in process 0 on the
        merged results. None: this process evaluates every image.
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device or recipe.train.device)
    splits = splits if splits is not None else load_data(recipe)
    if teacher is None:
        teacher = build_teacher(recipe, splits.info)
    if teacher is not None:
        teacher = teacher.to(dev)
    limit = limit if limit is not None else recipe.eval.limit
    chosen = _metrics(recipe, metrics)
    records = records if records is not None else {}  # the checks read them
    threats: dict[str, dict[str, Any]] = {}
    origins: dict[str, str] = {}
    batch_size = batch_size or recipe.eval.batch_size
    evaluated_at = utc_now()
    common = dict(device=dev, teacher=teacher, batch_size=batch_size, recipe=recipe, show_progress=show_progress,
                  threats=threats, origins=origins, progress_lines=True)
    if dist is not None and dist.enabled:
        values, errors, seconds, merged = evaluate_parts(
            model.to(dev), splits.test_x[:limit], splits.test_y[:limit], chosen, dist=dist, seed=recipe.eval.seed,
            **common,
        )
        records.update(merged)
    else:
        values, errors, seconds = run_metrics(
            model.to(dev), splits.test_x, splits.test_y, chosen, limit=limit, seed=recipe.eval.seed,
            records=records, **common,
        )
    n_test = int(splits.test_x.shape[0])
    n = n_test if limit is None else min(limit, n_test)
    info = metric_info(values, chosen, _metric_kinds(recipe, list(chosen)), origins, seconds, records, threats,
                       n_examples=n, evaluated_at=evaluated_at)
    report = {
        "schema": REPORT_SCHEMA_VERSION,
        "name": recipe.name,
        "recipe_hash": recipe.hash,
        "model": recipe.student.name,
        "teacher": recipe.teacher.to_json() if recipe.teacher is not None else None,
        "dataset": splits.info.name,
        "n_examples": n,
        "threat": resolve_threat(recipe).to_json(),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev),
        "advdistill_version": __version__,
        "metrics": values,
        "metric_info": info,
        "errors": errors,
        "seconds": seconds,
    }
    if recipe.eval.checks.enabled if checks is None else checks:
        def sanity_checks() -> dict[str, Any]:
            ctx = EvalContext(
                model=model, images=splits.test_x[:limit], labels=splits.test_y[:limit], device=dev,
                batch_size=batch_size, teacher=teacher, recipe=recipe, seed=recipe.eval.seed,
                show_progress=show_progress, label="checks",
            )
            result = run_checks(ctx, chosen, values, records, recipe.eval.checks, threats=threats)
            for entry in result["results"].values():
                entry["evaluated_at"] = evaluated_at
            progress.info("%s", checks_line(result))
            return result

        report["checks"] = from_main(dist or DistInfo(), sanity_checks, "while process 0 runs the sanity checks")
    return report


def evaluate(
    run_dir_or_model: str | Path | nn.Module,
    *,
    recipe: Recipe | str | Path | None = None,
    checkpoint: str | None = None,
    metrics: Sequence[str] | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    out_dir: str | Path | None = None,
    device: str | None = None,
    checks: bool | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a run directory, or a model with ``recipe=``; returns the report dict.

    See :func:`advdistill.api.evaluate` for the parameters.
    """
    if isinstance(recipe, (str, Path)):
        recipe = load_recipe(recipe)
    options = dict(metrics=metrics, limit=limit, batch_size=batch_size, checks=checks, show_progress=show_progress)
    if isinstance(run_dir_or_model, (str, Path)):
        return evaluate_run(run_dir_or_model, recipe=recipe, checkpoint=checkpoint, out_dir=out_dir, device=device,
                            **options)
    if recipe is None:
        raise RecipeError("evaluate(model, ...) needs recipe= (for the data set and the metrics)")
    if checkpoint is not None or out_dir is not None:
        raise ValueError("checkpoint= and out_dir= go with a run directory; evaluate(model, recipe=...) "
                         "evaluates the model as it is and writes no files")
    with joined_process_group(recipe, device) as (dist, device_spec):
        return evaluate_model(run_dir_or_model, recipe, device=device_spec, dist=dist, **options)
