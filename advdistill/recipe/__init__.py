"""Recipes: TOML files composing a run from registered components (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from advdistill.errors import RecipeError
from advdistill.recipe.bundled import closest_bundled, resolve_recipe_path
from advdistill.recipe.loading import apply_overrides, deep_merge, load_chain, parse_override
from advdistill.recipe.schema import (
    ComponentRef,
    EvalConfig,
    OptimConfig,
    Recipe,
    TrainConfig,
    check_packages,
    resolve,
    validate_for_training,
)

__all__ = [
    "ComponentRef",
    "EvalConfig",
    "OptimConfig",
    "Recipe",
    "TrainConfig",
    "apply_overrides",
    "check_packages",
    "deep_merge",
    "load_recipe",
    "parse_override",
    "validate_for_training",
]


def load_recipe(path: str | Path, overrides: Iterable[str] = ()) -> Recipe:
    """Read, merge (``extends``), override (``--set``) and validate a recipe.

    ``path`` is a recipe file, or the name of a bundled recipe (``cifar10/resnet18/rslad+igdm``,
    see ``advdistill recipe list``) when no such file exists. Raises
    :class:`advdistill.errors.RecipeError` with the file and key at fault.
    """
    path = resolve_recipe_path(path)
    if not path.exists():
        raise RecipeError(_not_found(path))
    data, provenance = load_chain(path)
    data = apply_overrides(data, provenance, list(overrides))
    return resolve(data, provenance, source=str(path))


def _not_found(path: Path) -> str:
    close = closest_bundled(str(path))
    hint = f" Did you mean the bundled {', '.join(repr(name) for name in close)}?" if close else ""
    return (f"Recipe file not found: {path} (nor a bundled recipe of that name).{hint} "
            "`advdistill recipe list` lists the bundled recipes, usable by name from any directory.")
