"""One contract check per component kind: what every attack, loss, schedule, model, teacher, data
set, metric and callback must do, asserted on a real instance (``assert`` with a message)."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping
from typing import Any

from advdistill.testing.builders import make_eval_context


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

    ``source.load()`` gives uint8 images (N, C, H, W) with C and (H, W) as its ``info`` says,
    int64 labels (N,) in [0, num_classes), ``class_names`` empty or one per class, and the
    expected counts when given.
    """
    import torch

    from advdistill.interfaces import DatasetInfo, DataSplits

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
    callback.on_train_end(run)
    _assert_restored(modes, flags, "on_train_end")
    _assert_same_rng(rng, "the callback")
    return records
