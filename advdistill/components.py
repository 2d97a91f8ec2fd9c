"""Building components: by name, from a recipe table, and the pieces every run needs.

Training, evaluation and the public API all build through here, so the rules (a
``"base:variant"`` name, parameters validated by the component's config class, teachers
frozen) are written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advdistill.config import component_config, split_table
from advdistill.errors import AdvDistillError, DataError, RecipeError


def build(kind: str, name: str, /, **params: Any) -> Any:
    """Build a component by name; ``params`` are validated by its config class.

    ``kind`` and ``name`` are positional-only, so that a component may itself have a
    parameter called ``name`` (e.g. the ``robustbench`` teacher).

    Example::

        attack = ad.build("attack", "pgd", eps="8/255", steps=20)
    """
    component, config = component_config(kind, name, params, where=f"{kind} {name!r}")
    return component(config)


def build_from_table(kind: str, table: Mapping[str, Any], *, example: str = '{kind = "..."}') -> Any:
    """Build a component from a recipe table ``{kind = "<name>", **params}`` (e.g. a teacher table)."""
    try:
        name, params = split_table(table, kind, example)
    except ValueError as exc:
        raise RecipeError(str(exc)) from None
    return build(kind, name, **params)


def build_labeled(refs: Mapping[str, Any]) -> dict[str, Any]:
    """Build each labelled component of a recipe section (``[aux.<label>]``, ``[callbacks.<label>]``)."""
    return {label: ref.build() for label, ref in refs.items()}


def missing_files(recipe: Any) -> dict[str, AdvDistillError]:
    """What is missing of the files the recipe's data set and teacher read, by section (``"data"``,
    ``"teacher"``); empty when everything is there. Nothing is read and no model is built: each
    component's ``check_files()`` looks for its files and raises the error its ``load()`` would."""
    problems: dict[str, AdvDistillError] = {}
    for section, ref in (("data", recipe.data), ("teacher", recipe.teacher)):
        if ref is None:
            continue
        check = getattr(ref.build(), "check_files", None)  # a duck-typed component may lack it
        try:
            if check is not None:
                check()
        except AdvDistillError as exc:
            problems[section] = exc
    return problems


def describe_missing(problems: Mapping[str, AdvDistillError]) -> str:
    """One line per missing file, each starting with its recipe section."""
    lines = []
    for section, problem in problems.items():
        text = str(problem)
        lines.append(f"- {text}" if text.startswith(f"[{section}]") else f"- [{section}] {text}")
    return "\n".join(lines)


def require_files(recipe: Any) -> None:
    """Raise when a file the recipe's data set or teacher reads is missing (every one named)."""
    problems = missing_files(recipe)
    if len(problems) == 1:
        raise next(iter(problems.values()))
    if problems:
        raise DataError("files the recipe reads are missing:\n" + describe_missing(problems))


def load_data(recipe: Any):
    """The recipe's data set, checked for the layout the engine expects, with the validation
    split (``[data] val_size``, ``val_seed``) held out of its training images."""
    from advdistill.val_split import hold_out_validation

    splits = recipe.data.build().load()
    for split in ("train", "test"):
        x, y = getattr(splits, f"{split}_x"), getattr(splits, f"{split}_y")
        if x.dim() != 4 or str(x.dtype) != "torch.uint8" or y.shape[0] != x.shape[0]:
            raise DataError(
                f"dataset {recipe.data.name!r} returned {split} images {tuple(x.shape)} {x.dtype}; "
                "expected uint8 (N, C, H, W) with one label per image"
            )
    if splits.val_x is not None:
        raise DataError(
            f"dataset {recipe.data.name!r} returned a validation split of its own; a data set returns "
            "its training and test splits, and the core holds [data] val_size training images out"
        )
    return hold_out_validation(splits, recipe.val.val_size, recipe.val.val_seed, dataset=recipe.data.name)


def build_student(recipe: Any, info: Any):
    """A freshly initialised student for the data set described by ``info``."""
    return recipe.student.build().build(num_classes=info.num_classes, in_chans=info.in_chans)


def build_teacher(recipe: Any, info: Any):
    """The recipe's teacher, frozen and in eval mode, or None."""
    from advdistill.torch_utils import freeze

    if recipe.teacher is None:
        return None
    teacher = recipe.teacher.build().load(num_classes=info.num_classes, in_chans=info.in_chans)
    return freeze(teacher)


def import_optional(module: str, *, requirement: str, user: str) -> Any:
    """Import an optional package, or raise a :class:`~advdistill.errors.PluginError` that says what to install.

    :param requirement: what ``pip install`` needs, e.g. ``"advdistill[mlflow]"``.
    :param user: who needs it, for the message, e.g. ``"callback 'mlflow'"``.
    """
    import importlib

    from advdistill.errors import PluginError

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PluginError(
            f"{user} needs the Python package {module!r}, which cannot be imported ({exc}). "
            f"Install it with: pip install '{requirement}'"
        ) from None


def missing_packages(requires: Mapping[str, str]) -> dict[str, str]:
    """The modules of ``requires`` (a component's ``requires_packages``: {module: pip requirement})
    that are not installed, found without importing them."""
    import importlib.util

    missing = {}
    for module, requirement in requires.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing[module] = requirement
    return missing
