"""advdistill.testing: the helpers build what components receive, and each contract check
passes a component that keeps the contract and fails one that breaks it."""

from __future__ import annotations

import random

import pytest
import torch

import advdistill as ad
from advdistill.context import StepContext
from advdistill.interfaces import (
    Callback,
    DatasetInfo,
    DataSplits,
    Metric,
    RunState,
    Schedule,
    StepExtension,
    TeacherLoader,
)
from advdistill.testing import (
    check_callback,
    check_dataset_source,
    check_metric,
    check_model_factory,
    check_schedule,
    check_step_extension,
    check_teacher_loader,
    make_eval_context,
    make_run_state,
    make_step_context,
    make_train_step,
    surface_violations,
    tiny_model,
)

# -- helpers -------------------------------------------------------------------------------------


def test_tiny_step_is_a_prepared_training_step(tiny_step):
    ctx = tiny_step.context(epoch=2, epochs=5)
    assert isinstance(ctx, StepContext)
    assert ctx.progress.epoch == 2 and ctx.progress.epochs == 5
    assert torch.equal(ctx.delta, tiny_step.x_adv - tiny_step.x)
    assert (ctx.delta.abs() <= tiny_step.eps + 1e-7).all() and ctx.x_adv.min() >= 0 and ctx.x_adv.max() <= 1
    assert tiny_step.student.training and not tiny_step.teacher.training
    assert not any(p.requires_grad for p in tiny_step.teacher.parameters())
    assert ctx.student_logits(1.0).shape == (6, 4) and ctx.teacher_logits(0.0).shape == (6, 4)
    assert tiny_step.context(teacher=None).teacher is None


def test_make_step_context_without_x_adv_is_the_context_an_attack_sees(tiny_step):
    ctx = make_step_context(tiny_step.student, None, tiny_step.x, tiny_step.y, epoch=3, epochs=4, step=1,
                            steps_per_epoch=2)
    assert ctx.x_adv is None and ctx.progress.global_step == 5
    with pytest.raises(RuntimeError, match="before the attack"):
        _ = ctx.delta


def test_tiny_model_is_seeded_and_leaves_the_global_rng_alone():
    before = torch.get_rng_state()
    a, b = tiny_model(seed=5), tiny_model(seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert tiny_model(num_classes=7, in_chans=3)(torch.rand(2, 3, 12, 12)).shape == (2, 7)


def test_make_run_state_builds_what_the_engine_builds(tiny_recipe, tmp_path):
    run = make_run_state(tiny_recipe(), tmp_path / "run", epochs=3)
    assert isinstance(run, RunState) and run.epochs == 3 and run.epoch == 0
    assert run.data.train_x.shape == (64, 1, 8, 8) and run.steps_per_epoch == 4
    assert run.student.training and run.teacher is None and run.recipe.name == "tiny"


def test_make_eval_context_converts_float_images_to_uint8():
    images = torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1, 1)
    ctx = make_eval_context(tiny_model(), images, torch.tensor([0, 1, 2]))
    assert ctx.images.dtype == torch.uint8 and ctx.images.flatten().tolist() == [0, 128, 255]
    assert not ctx.show_progress and ctx.n_examples == 3


# -- schedules -----------------------------------------------------------------------------------


class Counting(Schedule):
    """Breaks the contract: its value depends on how often it was asked."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __call__(self, progress):
        self.calls += 1
        return float(self.calls)


class Noisy(Schedule):
    def __call__(self, progress):
        return random.random() * 0 + progress.epoch


class NotANumber(Schedule):
    def __call__(self, progress):
        return float("nan") if progress.epoch == 2 else 1.0


def test_check_schedule_passes_a_builtin_schedule():
    values = check_schedule(ad.build("schedule", "linear", end=2.0), epochs=4, steps_per_epoch=2)
    assert values == [0.5, 0.5, 1.0, 1.0, 1.5, 1.5, 2.0, 2.0]


@pytest.mark.parametrize(("schedule", "message"), [
    (Counting(), "depends on what it was asked before"),
    (Noisy(), "global random RNG"),
    (NotANumber(), "finite number"),
])
def test_check_schedule_fails_a_broken_schedule(schedule, message):
    with pytest.raises(AssertionError, match=message):
        check_schedule(schedule)


# -- models and teachers -------------------------------------------------------------------------


class Factory:
    def __init__(self, make):
        self.make = make

    def build(self, num_classes, in_chans):
        return self.make(num_classes, in_chans)


class Detaching(torch.nn.Module):
    def __init__(self, num_classes, in_chans):
        super().__init__()
        self.net = tiny_model(num_classes, in_chans)

    def forward(self, x):
        return self.net(x.detach())


class StaysInTrainMode(torch.nn.Module):
    def __init__(self, num_classes, in_chans):
        super().__init__()
        self.net = tiny_model(num_classes, in_chans)

    def train(self, mode=True):
        self.training = mode  # forgets its children
        return self

    def forward(self, x):
        return self.net(x)


def test_check_model_factory_passes_a_builtin_model():
    model = check_model_factory(ad.build("model", "small_cnn", widths=[4], hidden=8), num_classes=5, in_chans=3)
    assert model.training


class AlwaysDropout(torch.nn.Module):
    def __init__(self, num_classes, in_chans):
        super().__init__()
        self.net = tiny_model(num_classes, in_chans)

    def forward(self, x):
        return torch.nn.functional.dropout(self.net(x), 0.5, training=True)  # ignores eval mode


def test_check_model_factory_accepts_dropout_that_follows_the_mode():
    check_model_factory(Factory(lambda c, i: torch.nn.Sequential(tiny_model(c, i), torch.nn.Dropout(0.5))))


@pytest.mark.parametrize(("make", "message"), [
    (lambda c, i: tiny_model(c + 1, i), "logits of shape"),
    (Detaching, "no gradient reaches the input"),
    (StaysInTrainMode, "left a submodule in the other mode"),
    (AlwaysDropout, "eval-mode outputs differ"),
])
def test_check_model_factory_fails_a_broken_model(make, message):
    with pytest.raises(AssertionError, match=message):
        check_model_factory(Factory(make))


class Loader(TeacherLoader):
    def __init__(self, frozen=True, eval_mode=True):
        super().__init__()
        self.frozen, self.eval_mode = frozen, eval_mode

    def load(self, *, num_classes, in_chans):
        model = tiny_model(num_classes, in_chans).train(not self.eval_mode)
        return model.requires_grad_(not self.frozen)


def test_check_teacher_loader():
    check_teacher_loader(Loader(), num_classes=3, in_chans=1, image_size=8)
    with pytest.raises(AssertionError, match="eval mode"):
        check_teacher_loader(Loader(eval_mode=False), num_classes=3, in_chans=1, image_size=8)
    with pytest.raises(AssertionError, match="frozen"):
        check_teacher_loader(Loader(frozen=False), num_classes=3, in_chans=1, image_size=8)


# -- data sets -----------------------------------------------------------------------------------


class Source:
    def __init__(self, **change):
        self.change = change

    def load(self):
        x = torch.zeros(4, 1, 5, 5, dtype=torch.uint8)
        y = torch.tensor([0, 1, 2, 0])
        parts = {"train_x": x, "train_y": y, "test_x": x[:2], "test_y": y[:2], **self.change}
        return DataSplits(DatasetInfo("toy", 3, 1, (5, 5)), **parts)


def test_check_dataset_source():
    check_dataset_source(ad.build("dataset", "synthetic", n_train=10, n_test=6, num_classes=3),
                         n_train=10, n_test=6, num_classes=3)
    check_dataset_source(Source(), n_train=4, n_test=2)
    with pytest.raises(AssertionError, match="uint8"):
        check_dataset_source(Source(train_x=torch.zeros(4, 1, 5, 5)))
    with pytest.raises(AssertionError, match="outside"):
        check_dataset_source(Source(test_y=torch.tensor([0, 3])))
    with pytest.raises(AssertionError, match="do not match info"):
        check_dataset_source(Source(test_x=torch.zeros(2, 3, 5, 5, dtype=torch.uint8)))
    with pytest.raises(AssertionError, match="expected 5"):
        check_dataset_source(Source(), n_train=5)


# -- metrics -------------------------------------------------------------------------------------


class GlobalNoise(Metric):
    def evaluate(self, ctx):
        return {"noise": float(torch.rand(()))}


class LeavesTrainMode(Metric):
    def evaluate(self, ctx):
        ctx.model.train()
        return {"x": 1.0}


class Text(Metric):
    def evaluate(self, ctx):
        return {"x": "high"}


class Unseeded(Metric):
    def __init__(self):
        super().__init__()
        self.generator = torch.Generator().manual_seed(0)

    def evaluate(self, ctx):
        return {"x": float(torch.rand((), generator=self.generator))}


@pytest.fixture
def eval_data():
    g = torch.Generator().manual_seed(0)
    return tiny_model(), torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8, generator=g), torch.arange(8) % 4


def test_check_metric_passes_builtin_metrics(eval_data):
    model, images, labels = eval_data
    assert check_metric(ad.build("metric", "clean"), model, images, labels, keys=["clean"])["clean"] >= 0
    report = check_metric(ad.build("metric", "pgd", steps=2), model, images, labels, keys=["pgd2"])
    assert 0 <= report["pgd2"] <= 100
    assert model.training  # restored for the caller


@pytest.mark.parametrize(("metric", "message"), [
    (GlobalNoise(), "global torch RNG"),
    (LeavesTrainMode(), "mode"),
    (Text(), "expected a finite number"),
    (Unseeded(), "second evaluation"),
])
def test_check_metric_fails_a_broken_metric(eval_data, metric, message):
    with pytest.raises(AssertionError, match=message):
        check_metric(metric, *eval_data)


def test_check_metric_checks_the_keys(eval_data):
    with pytest.raises(AssertionError, match="expected"):
        check_metric(ad.build("metric", "clean"), *eval_data, keys=["accuracy"])


# -- callbacks -----------------------------------------------------------------------------------


class Recorder(Callback):
    def __init__(self, add=None, change=None, noise=False):
        super().__init__()
        self.add, self.change, self.noise, self.calls = add, change, noise, []

    def on_train_start(self, run):
        self.calls.append(("start", run.epoch))

    def on_step_end(self, run, step):
        self.calls.append(("step", step.global_step, float(step.loss)))

    def on_epoch_end(self, run, record):
        self.calls.append(("epoch", run.epoch))
        if self.noise:
            torch.randn(())
        record.update(self.add or {})
        record.update(self.change or {})

    def on_train_end(self, run):
        self.calls.append(("end", run.epoch))


def test_check_callback_calls_every_hook_with_the_run_state(tiny_recipe, tmp_path):
    run = make_run_state(tiny_recipe(), tmp_path, epochs=2)
    recorder = Recorder(add={"extra": {"a": [1, 2.5]}})
    records = check_callback(recorder, run, steps=2)
    assert [r["extra"] for r in records] == [{"a": [1, 2.5]}] * 2
    assert [c[0] for c in recorder.calls] == ["start", "step", "step", "epoch", "step", "step", "epoch", "end"]
    assert [c[1] for c in recorder.calls if c[0] == "step"] == [0, 1, 2, 3]


@pytest.mark.parametrize(("callback", "message"), [
    (Recorder(add={"loss": torch.tensor(1.0)}), "cannot hold"),
    (Recorder(add={"x": float("nan")}), "cannot hold"),
    (Recorder(change={"train_loss": 0.0}), "changed the engine's record entry 'train_loss'"),
    (Recorder(noise=True), "global torch RNG"),
])
def test_check_callback_fails_a_broken_callback(tiny_recipe, tmp_path, callback, message):
    with pytest.raises(AssertionError, match=message):
        check_callback(callback, make_run_state(tiny_recipe(), tmp_path, epochs=1))


class ForgetfulState(Callback):
    """Saves a counter but loads nothing back."""

    def on_train_start(self, run):
        self.count = torch.zeros(())

    def on_step_end(self, run, step):
        self.count += 1

    def state_dict(self):
        return {"count": self.count.clone()}


def test_check_callback_fails_a_state_that_does_not_come_back(tiny_recipe, tmp_path):
    with pytest.raises(AssertionError, match="state 'count' differs after a reload"):
        check_callback(ForgetfulState(), make_run_state(tiny_recipe(), tmp_path, epochs=1))


class Shift(StepExtension):
    """Moves the weights before the loss; ``undo`` puts them back after the update."""

    def __init__(self, undo=True, touch_buffers=False, noise=False):
        super().__init__()
        self.undo, self.touch_buffers, self.noise = undo, touch_buffers, noise

    def before_loss(self, step):
        with torch.no_grad():
            for p in step.model.parameters():
                p.add_(0.01)
            if self.touch_buffers:
                for b in step.model.buffers():
                    b.add_(1)
        if self.noise:
            torch.randn(())

    def after_update(self, step):
        if self.undo:
            with torch.no_grad():
                for p in step.model.parameters():
                    p.sub_(0.01)


def test_check_step_extension_passes_one_that_undoes_what_it_does(tiny_step):
    loss = check_step_extension(Shift(), tiny_step.context())
    assert loss.dim() == 0 and torch.isfinite(loss)


@pytest.mark.parametrize(("extension", "message"), [
    (Shift(undo=False), "moved at a zero learning rate"),
    (Shift(touch_buffers=True), "changed the model's buffers"),
    (Shift(noise=True), "global torch RNG"),
])
def test_check_step_extension_fails_a_broken_extension(tiny_step, extension, message):
    with pytest.raises(AssertionError, match=message):
        check_step_extension(extension, tiny_step.context())


def test_make_train_step_loss_leaves_the_batchnorm_statistics_alone(tiny_step):
    step = make_train_step(tiny_step.context())
    before = [b.clone() for b in step.model.buffers()]
    loss = step.loss()
    loss.backward()  # the gradient reaches the model's own parameters
    assert all(torch.equal(a, b) for a, b in zip(step.model.buffers(), before))
    assert all(p.grad is not None for p in step.model.parameters())


# -- the plugin surface --------------------------------------------------------------------------


def test_surface_violations_finds_every_import_outside_the_surface(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        "import torch\n"
        "import advdistill as ad\n"
        "from advdistill import hookimpl, api\n"
        "from advdistill.config import as_float\n"
        "from advdistill_plugins.attacks.base import IterativeAttack\n"
        "from . import sibling\n"
        "def f():\n"
        "    from advdistill.engine.trainer import Trainer\n"
        "    import advdistill.recipe.loading\n"
    )
    found = [v.split(": ", 1)[1] for v in surface_violations(tmp_path)]
    assert found == ["advdistill.api", "advdistill.engine.trainer", "advdistill.recipe.loading"]
