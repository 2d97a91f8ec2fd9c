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
:func:`make_eval_context`, :func:`make_train_step`, :func:`tiny_model`; and one contract check per component kind,
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
  and the global RNG are left alone; a checkpoint state (``state_dict``) survives a reload.
- :func:`check_step_extension` — around one training step (:func:`make_train_step`): the
  weights end where they started at a zero learning rate, ``x_adv``, modes, flags, buffers
  and the global RNG are left alone, the update still gets a gradient.

:data:`PLUGIN_SURFACE` lists the modules a plugin may import (docs/plugins.md), and
:func:`surface_violations` finds imports of anything else in a plugin's source.

Nothing here imports torch at import time.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import math
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from attrs import define

from advdistill.recipe.toml_writer import to_toml
from advdistill.registry import Registry

#: The modules a plugin may import; the project keeps their public names stable (docs/plugins.md).
#: Anything else in ``advdistill`` (the engine, the evaluation runner, recipe loading, the CLI) and
#: in ``advdistill_plugins`` may change in any release.
PLUGIN_SURFACE: tuple[str, ...] = (
    "advdistill",
    "advdistill.components",
    "advdistill.config",
    "advdistill.context",
    "advdistill.errors",
    "advdistill.evaluation.context",
    "advdistill.evaluation.threat",
    "advdistill.interfaces",
    "advdistill.io",
    "advdistill.losses",
    "advdistill.progress",
    "advdistill.testing",
    "advdistill.torch_utils",
    "advdistill_plugins.attacks.base",
)
#: The packages whose modules :data:`PLUGIN_SURFACE` restricts.
SURFACE_PACKAGES = ("advdistill", "advdistill_plugins")


def _imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import; ``from pkg import name`` is ``pkg.name`` when that is a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                ours = node.module.split(".")[0] in SURFACE_PACKAGES
                yield node.lineno, name if ours and _is_module(name) else node.module


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def surface_violations(path: str | Path, surface: tuple[str, ...] = PLUGIN_SURFACE) -> list[str]:
    """Imports of advdistill modules outside ``surface`` in the Python files under ``path``.

    Every import counts (module level, inside functions, under ``TYPE_CHECKING``). Returns
    ``"file:line: module"`` strings; an empty list means the plugin uses only the surface.
    """
    root = Path(path)
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    found: dict[str, None] = {}
    for file in files:
        for line, module in _imported_modules(ast.parse(file.read_text(encoding="utf-8"))):
            if module.split(".")[0] in SURFACE_PACKAGES and module not in surface:
                found[f"{file}:{line}: {module}"] = None
    return list(found)


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
        from advdistill.errors import PluginError
        from advdistill.registry import _conflict_message

        name = pm.register(plugin, name=name)
        pm.check_pending()
        registry = collect(pm)
        registry.plugin_manager = pm  # type: ignore[attr-defined]
        set_registry(registry)
        # a test registering a plugin wants its problems raised, not recorded
        for failure in registry.failures:
            if failure.plugin == name:
                raise PluginError(failure.describe())
        for (kind, component), specs in registry.conflicts.items():
            if any(spec.plugin == name for spec in specs):
                raise PluginError(_conflict_message(kind, component, specs))
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


# -- what components receive -------------------------------------------------------------------

def tiny_model(num_classes: int = 4, in_chans: int = 1, width: int = 6, *, seed: int = 0,
               batchnorm: bool = True) -> Any:
    """A small CNN (conv, BatchNorm, SiLU, 4x4 pooling, linear) for any image size; seeded init.

    SiLU rather than ReLU: the model is smooth, so finite differences of a loss through it agree
    with autograd (:func:`check_objective_gradient`).
    """
    import torch
    from torch import nn

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1),
            nn.BatchNorm2d(width) if batchnorm else nn.Identity(),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(width * 16, num_classes),
        )
    finally:  # building a test model must not move the caller's global RNG
        torch.random.set_rng_state(generator_state)


def make_step_context(
    student: Any,
    teacher: Any,
    x: Any,
    y: Any,
    x_adv: Any = None,
    *,
    epoch: int = 1,
    epochs: int = 1,
    step: int = 0,
    steps_per_epoch: int = 1,
) -> Any:
    """A :class:`~advdistill.context.StepContext` as the engine hands it to objectives and aux losses.

    With ``x_adv`` the inner maximization counts as done (``ctx.delta`` is known); without it
    the context is as an attack sees it during training.
    """
    from advdistill.context import StepContext
    from advdistill.progress import Progress

    ctx = StepContext(x, y, student=student, teacher=teacher,
                      progress=Progress(epoch, epochs, step, steps_per_epoch))
    if x_adv is not None:
        ctx.set_adversarial(x_adv)
    return ctx


@define
class TinyStep:
    """A tiny student (BatchNorm, train mode), a frozen teacher (eval mode) and a batch with ``x_adv``.

    Images are (6, 1, 8, 8) in [0, 1], 4 classes; ``x_adv`` lies in the Linf ball of radius
    ``eps`` around ``x``. :meth:`context` makes a fresh step context over them each time (a
    context caches forwards, so a loss is evaluated on a new one after the weights change).
    """

    student: Any
    teacher: Any
    x: Any
    y: Any
    x_adv: Any
    eps: float

    def context(self, epoch: int = 1, epochs: int = 1, *, x_adv: Any = None, teacher: Any = "same") -> Any:
        return make_step_context(
            self.student, self.teacher if teacher == "same" else teacher, self.x, self.y,
            self.x_adv if x_adv is None else x_adv, epoch=epoch, epochs=epochs,
        )


@pytest.fixture
def tiny_step() -> TinyStep:
    """Tiny models and a batch (see :class:`TinyStep`); ``tiny_step.context()`` is a prepared step context."""
    import torch

    g = torch.Generator().manual_seed(3)
    x = torch.rand(6, 1, 8, 8, generator=g)
    y = torch.randint(0, 4, (6,), generator=g)
    eps = 0.1
    x_adv = (x + (torch.rand(x.shape, generator=g) * 2 - 1) * eps).clamp(0, 1)
    student = tiny_model(seed=1).train()
    teacher = tiny_model(width=8, seed=2).eval().requires_grad_(False)
    return TinyStep(student, teacher, x, y, x_adv, eps)


def make_run_state(recipe: Any, out_dir: str | Path, *, epochs: int | None = None) -> Any:
    """A :class:`~advdistill.interfaces.RunState` for ``recipe`` (a path or a loaded recipe), on the CPU.

    Data, student and teacher are built as the engine builds them (e.g. from ``tiny_recipe()``;
    the test split withheld, as in training); nothing is trained. ``epochs`` defaults to the recipe's.
    """
    import torch

    import advdistill
    from advdistill.components import build_student, build_teacher, load_data
    from advdistill.interfaces import RunState
    from advdistill.val_split import without_test

    if not hasattr(recipe, "to_dict"):
        recipe = advdistill.load_recipe(recipe)
    data = load_data(recipe)
    epochs = epochs or recipe.train.epochs
    steps = max(1, data.train_x.shape[0] // recipe.train.batch_size)
    if recipe.train.max_steps_per_epoch:
        steps = min(steps, recipe.train.max_steps_per_epoch)
    return RunState(
        recipe=recipe, out_dir=Path(out_dir), device=torch.device("cpu"),
        student=build_student(recipe, data.info).train(), teacher=build_teacher(recipe, data.info),
        data=without_test(data), epochs=epochs, steps_per_epoch=steps,
    )


def make_eval_context(model: Any, images: Any, labels: Any, *, teacher: Any = None, batch_size: int = 256,
                      seed: int = 0, recipe: Any = None) -> Any:
    """An :class:`~advdistill.evaluation.context.EvalContext` on the CPU, as a metric receives it.

    ``images`` are uint8 (N, C, H, W) (float images in [0, 1] are converted), ``labels`` (N,).
    """
    import torch

    from advdistill.evaluation.context import EvalContext

    if images.dtype != torch.uint8:
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return EvalContext(model=model, images=images, labels=labels.long(), device=torch.device("cpu"),
                       batch_size=batch_size, teacher=teacher, recipe=recipe, seed=seed, show_progress=False)


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


def _global_rng() -> dict[str, Any]:
    """The global random states a component must leave alone (torch CPU/CUDA, ``random``, NumPy)."""
    import torch

    states: dict[str, Any] = {"torch": torch.get_rng_state(), "random": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy comes with torch in practice
        return states
    states["numpy"] = numpy.random.get_state()
    return states


def _assert_same_rng(before: Mapping[str, Any], what: str) -> None:
    import torch

    after = _global_rng()
    for name, state in before.items():
        if name == "torch":
            same = torch.equal(after[name], state)
        elif name == "cuda":
            same = all(torch.equal(a, b) for a, b in zip(after[name], state))
        elif name == "numpy":
            same = all(
                (a == b).all() if hasattr(a, "shape") else a == b for a, b in zip(after[name], state)
            )
        else:
            same = after[name] == state
        assert same, f"{what} used or changed the global {name} RNG (use the generator it is given)"


def _modes(*models: Any) -> list[tuple[Any, bool]]:
    return [(m, m.training) for net in models if net is not None for m in net.modules()]


def _flags(*models: Any) -> list[tuple[Any, bool]]:
    return [(p, p.requires_grad) for net in models if net is not None for p in net.parameters()]


def _assert_restored(modes: list, flags: list, what: str) -> None:
    for module, mode in modes:
        assert module.training == mode, f"{what} changed the train/eval mode of {type(module).__name__}"
    for p, flag in flags:
        assert p.requires_grad == flag, f"{what} changed a parameter's requires_grad"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_schedule(schedule: Any, *, epochs: int = 5, steps_per_epoch: int = 3) -> list[float]:
    """Assert the schedule contract over a whole run; returns the values in step order.

    Every value is a finite number; the value is a function of the progress only (asking in
    reverse order, or again, gives the same values); the global RNG is untouched.
    """
    from advdistill.progress import Progress

    points = [Progress(e, epochs, s, steps_per_epoch) for e in range(1, epochs + 1) for s in range(steps_per_epoch)]
    rng = _global_rng()
    values = [schedule(p) for p in points]
    for p, v in zip(points, values):
        assert _is_number(v), f"the schedule gave {v!r} at {p}; expected a finite number"
    backwards = [schedule(Progress(p.epoch, p.epochs, p.step_in_epoch, p.steps_per_epoch)) for p in reversed(points)]
    assert backwards[::-1] == values, "the schedule's value depends on what it was asked before (keep no state)"
    assert [schedule(p) for p in points] == values, "the schedule is not deterministic"
    _assert_same_rng(rng, "the schedule")
    return [float(v) for v in values]


def check_model_factory(
    factory: Any, *, num_classes: int = 3, in_chans: int = 1, image_size: int | tuple[int, int] = 8, batch: int = 2
) -> Any:
    """Assert the model-factory contract; returns the built model (train mode).

    ``factory.build(num_classes, in_chans)`` is an ``nn.Module`` mapping images in [0, 1] of
    shape (B, in_chans, H, W) to finite float logits (B, num_classes) in train and in eval mode,
    differentiable with respect to the input (attacks need it), without changing the input;
    ``.eval()``/``.train()`` switch every submodule; eval-mode outputs are deterministic.
    """
    import torch
    from torch import nn

    model = factory.build(num_classes=num_classes, in_chans=in_chans)
    assert isinstance(model, nn.Module), f"build() returned {type(model).__name__}, expected an nn.Module"
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    x = torch.rand(batch, in_chans, height, width, generator=torch.Generator().manual_seed(0))
    x_before = x.clone()
    for train in (True, False):
        model.train(train)
        assert all(m.training == train for m in model.modules()), (
            f"model.train({train}) left a submodule in the other mode"
        )
        inputs = x.clone().requires_grad_(True)
        logits = model(inputs)
        mode = "train" if train else "eval"
        assert isinstance(logits, torch.Tensor) and logits.shape == (batch, num_classes), (
            f"{mode} mode: logits of shape {tuple(getattr(logits, 'shape', ()))}, expected {(batch, num_classes)}"
        )
        assert logits.is_floating_point() and torch.isfinite(logits).all(), f"{mode} mode: non-finite logits"
        (grad,) = torch.autograd.grad(logits.sum(), inputs, allow_unused=True) if logits.requires_grad else (None,)
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, (
            f"{mode} mode: no gradient reaches the input"
        )
    with torch.no_grad():
        assert torch.equal(model(x), model(x)), "eval-mode outputs differ between two calls"
    assert torch.equal(x, x_before), "the model changed its input in place"
    return model.train()


def check_teacher_loader(
    loader: Any, *, num_classes: int, in_chans: int = 3, image_size: int | tuple[int, int] = 32, batch: int = 2
) -> Any:
    """Assert the teacher-loader contract; returns the teacher.

    ``loader.load(num_classes=..., in_chans=...)`` returns a module in eval mode (every
    submodule), with every parameter frozen (``requires_grad`` False), mapping [0, 1] images to
    finite logits (B, num_classes), the same on two calls.
    """
    import torch

    teacher = loader.load(num_classes=num_classes, in_chans=in_chans)
    assert all(not m.training for m in teacher.modules()), "the teacher must come in eval mode"
    assert all(not p.requires_grad for p in teacher.parameters()), "the teacher's parameters must be frozen"
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    x = torch.rand(batch, in_chans, height, width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = teacher(x)
        assert logits.shape == (batch, num_classes), (
            f"teacher logits of shape {tuple(logits.shape)}, expected {(batch, num_classes)}"
        )
        assert torch.isfinite(logits).all(), "the teacher gives non-finite logits"
        assert torch.equal(teacher(x), logits), "the teacher's outputs differ between two calls"
    return teacher


def check_dataset_source(
    source: Any, *, n_train: int | None = None, n_test: int | None = None, num_classes: int | None = None
) -> Any:
    """Assert the data-set contract; returns the :class:`~advdistill.interfaces.DataSplits`.

    ``source.check_files()`` passes (the files are there), ``source.load()`` gives uint8 images
    (N, C, H, W) with C and (H, W) as its ``info`` says, int64 labels (N,) in [0, num_classes),
    ``class_names`` empty or one per class, and the expected counts when given.
    """
    import torch

    from advdistill.interfaces import DatasetInfo, DataSplits

    if hasattr(source, "check_files"):  # DatasetSource's; a duck-typed source may lack it
        assert source.check_files() is None, "check_files() returns None when the files are there"
    splits = source.load()
    assert isinstance(splits, DataSplits), f"load() returned {type(splits).__name__}, expected DataSplits"
    info = splits.info
    assert isinstance(info, DatasetInfo)
    assert num_classes is None or info.num_classes == num_classes, (
        f"info.num_classes is {info.num_classes}, expected {num_classes}"
    )
    assert len(info.class_names) in (0, info.num_classes), "class_names must be empty or name every class"
    for split, expected in (("train", n_train), ("test", n_test)):
        x, y = getattr(splits, f"{split}_x"), getattr(splits, f"{split}_y")
        assert x.dtype == torch.uint8 and x.dim() == 4, (
            f"{split} images: {x.dtype} {tuple(x.shape)}, expected uint8 (N, C, H, W)"
        )
        assert x.shape[1] == info.in_chans and tuple(x.shape[2:]) == tuple(info.image_size), (
            f"{split} images {tuple(x.shape)} do not match info (in_chans {info.in_chans}, size {info.image_size})"
        )
        assert y.dtype == torch.int64 and y.shape == (x.shape[0],), f"{split} labels: {y.dtype} {tuple(y.shape)}"
        if y.numel():
            assert int(y.min()) >= 0 and int(y.max()) < info.num_classes, f"{split} labels outside [0, num_classes)"
        assert expected is None or x.shape[0] == expected, f"{split}: {x.shape[0]} images, expected {expected}"
    return splits


def _check_report_value(key: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            assert isinstance(k, str), f"report key {key!r}: nested keys must be strings"
            if v is not None:
                _check_report_value(f"{key}.{k}", v)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if v is not None:
                _check_report_value(f"{key}[{i}]", v)
    else:
        assert _is_number(value), f"report key {key!r} holds {value!r}; expected a finite number"


def check_metric(
    metric: Any,
    model: Any,
    images: Any,
    labels: Any,
    *,
    teacher: Any = None,
    keys: Any = None,
    batch_size: int = 256,
    repeat: bool = True,
) -> dict[str, Any]:
    """Assert the metric contract on one evaluation; returns the report entries.

    The model (and teacher) are presented as the evaluation runner presents them: eval mode,
    parameters frozen. ``metric.evaluate(ctx)`` must return ``{report key: value}`` with
    finite numbers (or lists/tables of them; ``None`` inside is allowed) that survive strict
    JSON, the keys ``keys`` when given, and the same report a second time (``repeat``; its
    randomness comes from ``ctx.generator``); the models' modes and flags and the global RNGs
    are left as they were.
    """
    from advdistill.torch_utils import module_mode, no_param_grad

    with module_mode(model, False), no_param_grad(model, teacher):
        modes, flags = _modes(model, teacher), _flags(model, teacher)
        rng = _global_rng()

        def run() -> dict[str, Any]:
            ctx = make_eval_context(model, images, labels, teacher=teacher, batch_size=batch_size)
            return dict(metric.evaluate(ctx))

        report = run()
        _assert_restored(modes, flags, "the metric")
        _assert_same_rng(rng, "the metric")
        assert report, "the metric returned no report key"
        for key, value in report.items():
            assert isinstance(key, str) and key, f"report keys must be non-empty strings, got {key!r}"
            _check_report_value(key, value)
        json.dumps(report, allow_nan=False)
        if keys is not None:
            assert set(report) == set(keys), f"report keys {sorted(report)}, expected {sorted(keys)}"
        if repeat:
            assert run() == report, "a second evaluation gave another report (take randomness from ctx.generator)"
    return report


def check_callback(callback: Any, run: Any, *, steps: int = 2) -> list[dict[str, Any]]:
    """Assert the callback contract over ``run.epochs`` epochs of ``steps`` fake steps; returns the records.

    Every hook is called with the :class:`~advdistill.interfaces.RunState` as the engine calls it
    (``run.epoch`` set, the student in train mode). The engine's entries of each epoch record
    stay as they were and what the callback adds is strict JSON; the student's and teacher's
    modes and flags and the global RNGs are left as they were.
    """
    import torch

    from advdistill.interfaces import StepInfo

    rng = _global_rng()
    run.student.train()
    modes, flags = _modes(run.student, run.teacher), _flags(run.student, run.teacher)
    records = []
    callback.on_train_start(run)
    _assert_restored(modes, flags, "on_train_start")
    for epoch in range(1, run.epochs + 1):
        run.epoch = epoch
        callback.on_epoch_start(run, epoch)
        for step in range(steps):
            loss = torch.tensor(1.0 / (epoch + step))
            info = StepInfo(epoch, step, steps, (epoch - 1) * steps + step, loss, 0.1, {"term": loss * 0.5},
                            loss_value=float(loss) if step == steps - 1 else None, images_per_s=100.0)
            callback.on_step_end(run, info)
        engine = {"event": "epoch", "epoch": epoch, "train_loss": 0.5 / epoch, "lr": 0.1, "seconds": 0.01}
        record = dict(engine)
        callback.on_epoch_end(run, record)
        _assert_restored(modes, flags, f"epoch {epoch}")
        for key, value in engine.items():
            assert record.get(key) == value, f"the callback changed the engine's record entry {key!r}"
        added = {k: v for k, v in record.items() if k not in engine}
        try:
            json.dumps(added, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AssertionError(f"the callback added entries metrics.jsonl cannot hold ({exc}): {added!r}") from None
        records.append(record)
    _check_checkpoint_state(callback, run)
    callback.on_train_end(run)
    _assert_restored(modes, flags, "on_train_end")
    _assert_same_rng(rng, "the callback")
    return records


def _check_checkpoint_state(callback: Any, run: Any) -> None:
    """``state_dict()`` gives tensors that a fresh instance, started as on a resume, loads back unchanged."""
    import torch

    state = callback.state_dict()
    assert all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()), (
        "state_dict() must map names to tensors (the checkpoint is a safetensors file)"
    )
    if not state:
        return
    fresh = type(callback)(callback.config)
    fresh.on_train_start(run)  # a resume: on_train_start, then load_state_dict
    fresh.load_state_dict({k: v.detach().cpu().clone() for k, v in state.items()})
    again = fresh.state_dict()
    assert again.keys() == state.keys(), "load_state_dict(state_dict()) changed the state's names"
    for key in state:
        assert torch.equal(again[key].cpu(), state[key].cpu()), f"state {key!r} differs after a reload"
    exports = fresh.weight_exports()
    assert set(exports) == set(callback.weight_exports()), "the weight exports differ after a reload"


def _student_ce_at_x_adv(ctx: Any) -> Any:
    """The default loss of :func:`make_train_step` and :func:`check_step_extension`: the student's CE at ``x_adv``."""
    import torch

    return torch.nn.functional.cross_entropy(ctx.student_logits(1.0), ctx.y)


def make_train_step(ctx: Any, optimizer: Any = None, *, model: Any = None, loss: Any = None) -> Any:
    """A :class:`~advdistill.interfaces.TrainStep` over a prepared step context, as the engine builds it.

    ``loss(ctx)`` is the recipe's loss (default: cross-entropy of the student at ``x_adv``);
    ``step.loss()`` evaluates it on ``ctx.fresh()`` and leaves the model's buffers as they were,
    as the engine does. ``optimizer`` defaults to SGD with a zero learning rate.
    """
    import torch

    from advdistill.interfaces import TrainStep
    from advdistill.torch_utils import WithBufferCopies

    model = model if model is not None else ctx.student
    loss = loss if loss is not None else _student_ce_at_x_adv
    optimizer = optimizer if optimizer is not None else torch.optim.SGD(model.parameters(), lr=0.0)

    def loss_fn(_aux: bool) -> Any:
        return loss(ctx.fresh(student=WithBufferCopies(model)))

    return TrainStep(ctx=ctx, model=model, optimizer=optimizer, loss_fn=loss_fn)


def check_step_extension(extension: Any, ctx: Any, *, steps: int = 2, loss: Any = None) -> Any:
    """Assert the step-extension contract over ``steps`` training steps; returns the last step's loss.

    Each step runs as the engine runs it (``before_loss``, the loss and its backward,
    ``before_update``, a zero-learning-rate ``optimizer.step()``, ``after_update``). The hooks
    leave ``x_adv``, the models' modes and ``requires_grad`` flags, the model's buffers and the
    global RNG as they were; every trainable parameter still gets a finite gradient; and the
    weights after each step equal those before (up to float rounding): an extension changes the
    update, never where the weights end up on its own. ``ctx`` is a prepared step context (e.g.
    ``tiny_step.context()``).
    """
    import torch

    model = ctx.student
    step = make_train_step(ctx, loss=loss)
    loss_of = loss if loss is not None else _student_ce_at_x_adv
    rng = _global_rng()
    modes, flags = _modes(model, ctx.teacher), _flags(model, ctx.teacher)
    x_adv = ctx.x_adv.clone()
    buffer_names = {name for name, _ in model.named_buffers()}
    value = None
    for index in range(steps):
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        buffers = [b.clone() for b in model.buffers()]
        extension.before_loss(step)
        assert all(torch.equal(a, b) for a, b in zip(model.buffers(), buffers)), (
            "before_loss changed the model's buffers (BatchNorm statistics): step.loss() leaves them alone; "
            "an extension must too"
        )
        value = loss_of(ctx.fresh())
        step.optimizer.zero_grad(set_to_none=True)
        value.backward()
        extension.before_update(step)
        for name, p in model.named_parameters():
            finite = p.grad is not None and bool(torch.isfinite(p.grad).all())
            assert finite or not p.requires_grad, f"step {index}: no finite gradient for {name}"
        step.optimizer.step()
        extension.after_update(step)
        for key, after in model.state_dict().items():
            if key in buffer_names:
                continue  # the loss's own forward updates BatchNorm statistics, as in training
            before = weights[key]
            assert torch.allclose(after, before, rtol=1e-5, atol=1e-6), (
                f"step {index}: {key} moved at a zero learning rate (max change "
                f"{(after - before).abs().max().item():.3g}): the extension must undo what it does to the weights"
            )
    assert torch.equal(ctx.x_adv, x_adv), "the extension changed x_adv"
    _assert_restored(modes, flags, "the step extension")
    _assert_same_rng(rng, "the step extension")
    return value
