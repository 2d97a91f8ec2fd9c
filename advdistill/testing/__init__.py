"""A pytest plugin for testing advdistill and its plugins (ours and third-party ones).

Installed through the ``pytest11`` entry point, so any test suite with advdistill installed
gets these fixtures:

- ``advdistill_registry``: a fresh registry of the installed plugins, made the process-wide
  one for the test (components registered in a test never leak into the next).
- ``register_plugin``: register an inline plugin (a module, class or object with
  ``@hookimpl`` functions) into that registry.
- ``tiny_recipe``: write a small, fast TOML recipe (synthetic data, a tiny CNN) and return
  its path; keyword arguments override tables.
- ``tiny_step``: a :class:`TinyStep` — a tiny student (with BatchNorm, train mode), a frozen
  teacher, a batch and an adversarial batch; ``tiny_step.context(epoch=1, epochs=1)`` makes a
  fresh :class:`~advdistill.context.StepContext` over them, as the engine hands to losses.

helpers to build what components receive: :func:`make_step_context`, :func:`make_run_state`,
:func:`make_eval_context`, :func:`tiny_model`; and one contract check per component kind,
which a plugin's own tests call on the plugin:

- :func:`check_attack` — output in the ε-ball and [0, 1], detached, deterministic for a
  seeded generator, models' modes, ``requires_grad`` flags and gradients untouched, the
  global RNG untouched.
- :func:`check_objective` (objectives and aux losses) — a finite scalar with gradients for
  the student only, the teacher untouched, the models' train/eval modes left as they were.
- :func:`check_objective_gradient` — autograd's gradient of the loss with respect to the
  student's parameters agrees with central finite differences (catches stray ``detach``,
  in-place edits and non-differentiable shortcuts).
- :func:`check_schedule` — finite numbers, a function of the progress only (same value for
  the same progress, whatever was asked before), the global RNG untouched.
- :func:`check_model_factory` — builds for ``num_classes``/``in_chans``, maps [0, 1] images to
  (B, C) finite logits differentiable in the input, in train and eval mode; ``.eval()`` and
  ``.train()`` switch every submodule; eval-mode outputs are deterministic.
- :func:`check_teacher_loader` — the teacher comes frozen, in eval mode, with (B, C) logits.
- :func:`check_dataset_source` — uint8 NCHW images matching the info, int64 labels in range,
  the expected counts.
- :func:`check_metric` — report keys with finite numbers (JSON), the same report twice, the
  models' modes and flags restored, the global RNGs untouched.
- :func:`check_callback` — every hook accepts a :class:`~advdistill.interfaces.RunState`;
  what it adds to the epoch record is JSON; the engine's record entries, the student's mode
  and the global RNG are left alone.

:data:`PLUGIN_SURFACE` lists the modules a plugin may import (docs/plugins.md), and
:func:`surface_violations` finds imports of anything else in a plugin's source.

The pieces live in ``advdistill.testing.builders`` (what components receive),
``advdistill.testing.contracts`` (the checks) and ``advdistill.testing.surface``; import them from
``advdistill.testing``. Nothing here imports torch at import time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from advdistill.registry import Registry
from advdistill.testing.builders import (
    TINY_RECIPE,
    TinyStep,
    make_eval_context,
    make_run_state,
    make_step_context,
    make_tiny_step,
    tiny_model,
    to_toml,
)
from advdistill.testing.contracts import (
    check_attack,
    check_callback,
    check_dataset_source,
    check_metric,
    check_model_factory,
    check_objective,
    check_objective_gradient,
    check_schedule,
    check_teacher_loader,
)
from advdistill.testing.surface import PLUGIN_SURFACE, surface_violations

__all__ = [
    "PLUGIN_SURFACE", "TINY_RECIPE", "TinyStep", "check_attack", "check_callback", "check_dataset_source",
    "check_metric", "check_model_factory", "check_objective", "check_objective_gradient", "check_schedule",
    "check_teacher_loader", "make_eval_context", "make_run_state", "make_step_context", "make_tiny_step",
    "surface_violations", "tiny_model", "to_toml",
]


@pytest.fixture
def advdistill_registry() -> Iterator[Registry]:
    """A fresh registry of every installed plugin, installed as the process-wide one."""
    from advdistill.plugins import collect, make_plugin_manager, set_registry

    pm = make_plugin_manager()
    registry = collect(pm)
    registry.plugin_manager = pm  # type: ignore[attr-defined]
    previous = set_registry(registry)
    try:
        yield registry
    finally:
        set_registry(previous)


@pytest.fixture
def register_plugin(advdistill_registry: Registry) -> Callable[[object], Registry]:
    """``register_plugin(plugin)`` adds an inline plugin's components to the test's registry."""
    from advdistill.plugins import collect, set_registry

    pm = advdistill_registry.plugin_manager  # type: ignore[attr-defined]

    def register(plugin: object, name: str | None = None) -> Registry:
        pm.register(plugin, name=name)
        pm.check_pending()
        registry = collect(pm)
        registry.plugin_manager = pm  # type: ignore[attr-defined]
        set_registry(registry)
        return registry

    return register


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Callable[..., Path]:
    """``tiny_recipe(**tables)`` writes a seconds-fast recipe; a table given replaces the default."""

    def make(name: str = "tiny.toml", **tables: Any) -> Path:
        data = copy.deepcopy(TINY_RECIPE)
        for key, value in tables.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        path = tmp_path / name
        path.write_text(to_toml(data))
        return path

    return make


@pytest.fixture
def tiny_step() -> TinyStep:
    """Tiny models and a batch (see :class:`TinyStep`); ``tiny_step.context()`` is a prepared step context."""
    return make_tiny_step()
