"""What components receive, built for tests: tiny models, step contexts, run states, evaluation contexts,
and the tiny recipe of the ``tiny_recipe`` fixture."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import define

TINY_RECIPE: dict[str, Any] = {
    "schema": 1,
    "name": "tiny",
    "data": {"kind": "synthetic", "n_train": 64, "n_test": 32, "num_classes": 4, "image_size": 8, "in_chans": 1},
    "student": {"kind": "small_cnn", "widths": [4], "hidden": 8},
    "attack": {"kind": "pgd", "eps": "8/255", "step_size": "2/255", "steps": 2},
    "objective": {"kind": "pgd_at"},
    "optim": {"kind": "sgd", "lr": 0.05},
    "train": {"epochs": 1, "batch_size": 16, "log_every": 2, "device": "cpu"},
    "eval": {"batch_size": 32, "metrics": {"clean": {"kind": "clean"}, "pgd": {"kind": "pgd", "steps": 2}}},
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


def make_tiny_step() -> TinyStep:
    """What the ``tiny_step`` fixture gives: tiny seeded models and a batch with its ``x_adv``."""
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

    Data, student and teacher are built as the engine builds them (e.g. from ``tiny_recipe()``);
    nothing is trained. ``epochs`` defaults to the recipe's.
    """
    import torch

    import advdistill
    from advdistill.components import build_student, build_teacher, load_data
    from advdistill.interfaces import RunState

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
        data=data, epochs=epochs, steps_per_epoch=steps,
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
