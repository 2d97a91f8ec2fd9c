"""The public Python API (DESIGN §9); the CLI is a thin layer over these functions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from advdistill.components import build
from advdistill.plugins import get_registry
from advdistill.registry import ComponentInfo

__all__ = ["build", "create_model", "evaluate", "list_components", "load_recipe", "load_teacher", "train"]


def list_components(kind: str | None = None) -> list[ComponentInfo]:
    """Every registered component (of one kind), with its plugin, package and version."""
    return list(get_registry().infos(kind))


def create_model(name: str, *, num_classes: int = 10, in_chans: int = 3, **params: Any):
    """An architecture from the ``model`` registry, e.g. ``create_model("cifar_resnet18")``."""
    return build("model", name, **params).build(num_classes=num_classes, in_chans=in_chans)


def load_teacher(
    name: str,
    model_dir: str | Path = "models",
    dataset: str = "cifar10",
    threat_model: str = "Linf",
    trust_pickle: bool = False,
    **params: Any,
):
    """A RobustBench-layout teacher from ``{model_dir}/{dataset}/{threat_model}/{name}``."""
    loader = build(
        "teacher", "robustbench", name=name, model_dir=str(model_dir), dataset=dataset,
        threat_model=threat_model, trust_pickle=trust_pickle, **params,
    )
    return loader.load(num_classes=loader.num_classes, in_chans=3)


def load_recipe(path: str | Path, overrides: Iterable[str] = ()):
    """Read, merge, override and validate a recipe (raises ``RecipeError``)."""
    from advdistill.recipe import load_recipe as _load

    return _load(path, overrides)


def train(
    recipe: Any,
    out_dir: str | Path,
    resume: bool = False,
    overrides: Iterable[str] = (),
    *,
    allow_recipe_change: bool = False,
    init_from: str | Path | None = None,
    init_strict: bool = True,
) -> Path:
    """Train the recipe's student into ``out_dir`` (a run directory); returns it.

    :param resume: continue the run in ``out_dir`` (exactly, from its checkpoint).
    :param allow_recipe_change: with ``resume``, accept a changed learning rate, epoch count, aux
        weight and the other keys of docs/reliability.md.
    :param init_from: start the student from this weights file (e.g. another run's
        ``checkpoints/last.safetensors``) instead of a random initialisation.
    :param init_strict: every student tensor must be in ``init_from`` with its shape.
    """
    from advdistill.engine.trainer import Trainer

    if not hasattr(recipe, "to_dict"):
        recipe = load_recipe(recipe, overrides)
    elif overrides:
        recipe = recipe.with_overrides(list(overrides))
    trainer = Trainer(recipe, Path(out_dir), resume=resume, allow_recipe_change=allow_recipe_change,
                      init_from=init_from, init_strict=init_strict)
    return trainer.fit()


def evaluate(
    run_dir_or_model: Any,
    *,
    recipe: Any = None,
    checkpoint: str | None = None,
    metrics: Sequence[str] | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    out_dir: str | Path | None = None,
    device: str | None = None,
    checks: bool | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a run directory (or a model with ``recipe=``); returns the report dict (as report.json).

    :param run_dir_or_model: a run directory (its ``recipe.json`` and checkpoints), or an
        ``nn.Module`` mapping images in [0, 1] to logits.
    :param recipe: a recipe (path or loaded): the data set, teacher and ``[eval]`` metrics; default
        for a run directory: its ``recipe.json``. Required with a model.
    :param checkpoint: run directory only: ``"last"``, ``"best"`` or a ``.safetensors`` path; default:
        both ``last`` and ``best``, the report's numbers those of ``[eval] checkpoint``.
    :param metrics: metric labels of the recipe or metric kinds (e.g. ``["clean", "pgd"]``); default:
        the recipe's ``[eval.metrics]``.
    :param limit: evaluate the first ``limit`` test images only.
    :param batch_size: evaluation batch size (default: ``[eval] batch_size``).
    :param out_dir: run directory only: where ``report.json``, ``report.md``,
        ``per_example.safetensors`` and ``plots/`` go (default: the run directory). A model's
        evaluation writes nothing.
    :param device: ``"auto"``, ``"cpu"``, ``"cuda"`` (default: the recipe's ``train.device``).
    :param checks: run the evaluation sanity checks; None: the recipe's ``[eval] checks``.
    :param show_progress: progress bars on a terminal.

    Under ``torchrun`` every process calls it: each evaluates its part of the test set and all
    return the merged report (docs/metrics.md, "Multi-GPU evaluation").
    """
    from advdistill.evaluation.api import evaluate as _evaluate

    return _evaluate(run_dir_or_model, recipe=recipe, checkpoint=checkpoint, metrics=metrics, limit=limit,
                     batch_size=batch_size, out_dir=out_dir, device=device, checks=checks,
                     show_progress=show_progress)
