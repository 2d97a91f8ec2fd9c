"""A pytest plugin for testing advdistill and its plugins (ours and third-party ones).

Installed through the ``pytest11`` entry point, so any test suite with advdistill installed
gets these fixtures:

- ``advdistill_registry``: a fresh registry of the installed plugins, made the process-wide
  one for the test (components registered in a test never leak into the next).
- ``register_plugin``: register an inline plugin (a module, class or object with
  ``@hookimpl`` functions) into that registry.
- ``tiny_recipe``: write a small, fast TOML recipe (synthetic data, a tiny CNN) and return
  its path; keyword arguments override tables.

and these contract checks, which a plugin's own tests call on the plugin:

- :func:`check_attack` — output in the ε-ball and [0, 1], detached, deterministic for a
  seeded generator, models' modes, ``requires_grad`` flags and gradients untouched, the
  global RNG untouched.
- :func:`check_objective` — a finite scalar with gradients for the student only, the
  teacher untouched, the models' train/eval modes left as they were.
- :func:`check_objective_gradient` — autograd's gradient of the loss with respect to the
  student's parameters agrees with central finite differences (catches stray ``detach``,
  in-place edits and non-differentiable shortcuts).

Nothing here imports torch at import time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from advdistill.registry import Registry


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


TINY_RECIPE: dict[str, Any] = {
    "schema": 1,
    "name": "tiny",
    "data": {"kind": "synthetic", "n_train": 64, "n_test": 32, "num_classes": 4, "image_size": 8, "in_chans": 1},
    "student": {"kind": "small_cnn", "widths": [4], "hidden": 8},
    "attack": {"kind": "pgd", "eps": "8/255", "step_size": "2/255", "steps": 2},
    "objective": {"kind": "pgd_at"},
    "optim": {"kind": "sgd", "lr": 0.05},
    "train": {"epochs": 1, "batch_size": 16, "log_every": 2, "device": "cpu"},
    # the sanity checks attack the model several more times: tests that want them turn them on
    "eval": {"batch_size": 32, "checks": False,
             "metrics": {"clean": {"kind": "clean"}, "pgd": {"kind": "pgd", "steps": 2}}},
    "callbacks": {"progress": False},
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer for recipe dicts (top-level scalars, then tables)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, Mapping)]
    for key, value in data.items():
        if isinstance(value, Mapping):
            lines += ["", f"[{key}]"] + [f"{k} = {_toml_value(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


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


# -- contract checks ---------------------------------------------------------------------------

def _norm_of(delta: Any, norm: str) -> Any:
    flat = delta.flatten(1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    return flat.norm(p=2 if norm == "l2" else 1, dim=1)


def check_attack(
    attack: Any,
    model: Any,
    x: Any,
    y: Any,
    *,
    teacher: Any = None,
    eps: float | None = None,
    norm: str | None = None,
    tolerance: float = 1e-5,
) -> Any:
    """Assert the attack contract on one batch; returns ``x_adv``.

    ``eps``/``norm`` default to the attack's config. Run it with the model in train mode and
    in eval mode to check that modes are restored either way.
    """
    import torch

    cfg = getattr(attack, "config", None)
    eps = eps if eps is not None else cfg.eps
    norm = norm or getattr(cfg, "norm", "linf")
    models = [m for m in (model, teacher) if m is not None]
    modes = [[(m, m.training) for m in net.modules()] for net in models]
    flags = [[(p, p.requires_grad) for p in net.parameters()] for net in models]
    grads = [[None if p.grad is None else p.grad.clone() for p in net.parameters()] for net in models]
    rng_before = torch.get_rng_state()

    def run() -> Any:
        gen = torch.Generator(device=x.device).manual_seed(1234)
        return attack.perturb(model, x, y, teacher=teacher, generator=gen)

    x_adv = run()
    assert torch.equal(torch.get_rng_state(), rng_before), "the attack used or changed the global RNG"
    assert isinstance(x_adv, torch.Tensor) and x_adv.shape == x.shape, "x_adv must have x's shape"
    assert not x_adv.requires_grad and x_adv.grad_fn is None, "x_adv must be detached"
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0, "x_adv must lie in [0, 1]"
    excess = (_norm_of(x_adv - x, norm) - eps).max().item()
    assert excess <= tolerance * max(1.0, eps), f"x_adv leaves the {norm} ball of radius {eps} (by {excess})"
    for saved in modes:
        for module, mode in saved:
            assert module.training == mode, f"the attack changed the mode of {type(module).__name__}"
    for saved in flags:
        for p, flag in saved:
            assert p.requires_grad == flag, "the attack changed a parameter's requires_grad"
    for net, saved in zip(models, grads):
        for p, g in zip(net.parameters(), saved):
            same = (p.grad is None and g is None) or (
                p.grad is not None and g is not None and torch.equal(p.grad, g)
            )
            assert same, "the attack changed parameter gradients"
    assert torch.equal(run(), x_adv), "the same generator seed must give the same x_adv"
    return x_adv


def check_objective(objective: Any, ctx: Any) -> Any:
    """Assert the objective/aux contract on a prepared :class:`StepContext`; returns the loss."""
    import torch

    models = [m for m in (ctx.student, ctx.teacher) if m is not None]
    modes = [(m, m.training) for net in models for m in net.modules()]
    loss = objective(ctx)
    for module, mode in modes:
        assert module.training == mode, f"the objective changed the mode of {type(module).__name__}"
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0, "the loss must be a scalar tensor"
    assert torch.isfinite(loss), f"the loss is not finite: {loss}"
    student_params = [p for p in ctx.student.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, student_params, allow_unused=True, retain_graph=True)
    assert any(g is not None and torch.isfinite(g).all() for g in grads), "no gradient reaches the student"
    if ctx.teacher is not None:
        assert all(not p.requires_grad for p in ctx.teacher.parameters()), "the teacher must stay frozen"
        assert all(p.grad is None for p in ctx.teacher.parameters()), "a gradient reached the teacher"
    return loss


def check_objective_gradient(
    objective: Any,
    make_context: Callable[[], Any],
    *,
    directions: int = 3,
    step: float = 1e-3,
    rtol: float = 2e-2,
    atol: float = 1e-5,
    seed: int = 0,
) -> None:
    """Assert that the loss's autograd gradient matches central finite differences.

    Along ``directions`` random unit-variance directions ``d`` in the student's parameter
    space, ``⟨∇L, d⟩`` must agree with ``(L(θ + h·d) − L(θ − h·d)) / 2h`` (h = ``step``).
    ``make_context()`` returns a fresh, prepared :class:`StepContext` over the *same*
    student and teacher each time (the context caches forward passes). The contexts run in
    float32, so the tolerances are loose: the check catches wrong gradients, not roundoff.
    """
    import torch

    ctx = make_context()
    params = [p for p in ctx.student.parameters() if p.requires_grad]
    grads = torch.autograd.grad(objective(ctx), params, allow_unused=True)
    generator = torch.Generator().manual_seed(seed)

    def shifted_loss(directions_: list, scale: float) -> float:
        with torch.no_grad():
            for p, d in zip(params, directions_):
                p.add_(d, alpha=scale)
            try:
                return float(objective(make_context()))
            finally:
                for p, d in zip(params, directions_):
                    p.sub_(d, alpha=scale)

    for index in range(directions):
        dirs = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
        analytic = float(sum((g * d).sum() for g, d in zip(grads, dirs) if g is not None))
        numeric = (shifted_loss(dirs, step) - shifted_loss(dirs, -step)) / (2 * step)
        assert abs(analytic - numeric) <= atol + rtol * max(abs(analytic), abs(numeric)), (
            f"direction {index}: autograd gives {analytic:.6g}, finite differences {numeric:.6g}"
        )
