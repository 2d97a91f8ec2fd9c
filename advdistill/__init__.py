"""advdistill: plugin-based adversarially robust knowledge distillation.

Importing this package is cheap (no torch): the API functions load their machinery on
first use, so that plugin modules can ``from advdistill import hookimpl`` at registration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from advdistill.errors import (
    AdvDistillError,
    CheckpointError,
    DataError,
    DistributedError,
    PluginError,
    RecipeError,
    RunDirectoryError,
    StudyError,
    TrainingError,
    UnknownComponentError,
)
from advdistill.hookspecs import hookimpl
from advdistill.version import __version__

__all__ = [
    "AdvDistillError",
    "CheckpointError",
    "DataError",
    "DistributedError",
    "PluginError",
    "RecipeError",
    "RunDirectoryError",
    "StudyError",
    "TrainingError",
    "UnknownComponentError",
    "__version__",
    "build",
    "create_model",
    "evaluate",
    "hookimpl",
    "list_components",
    "load_recipe",
    "load_teacher",
    "train",
]

_API = {"build", "create_model", "evaluate", "list_components", "load_recipe", "load_teacher", "train"}

if TYPE_CHECKING:
    from advdistill.api import (
        build,
        create_model,
        evaluate,
        list_components,
        load_recipe,
        load_teacher,
        train,
    )


def __getattr__(name: str) -> Any:
    if name in _API:
        from advdistill import api

        return getattr(api, name)
    raise AttributeError(f"module 'advdistill' has no attribute {name!r}")
