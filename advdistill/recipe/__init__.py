"""Recipes: TOML files composing a run from registered components (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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

    Raises :class:`advdistill.errors.RecipeError` with the file and key at fault.
    """
    path = Path(path)
    data, provenance = load_chain(path)
    data = apply_overrides(data, provenance, list(overrides))
    return resolve(data, provenance, source=str(path))
