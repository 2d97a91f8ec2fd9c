"""The [train] speed settings: compiled vs eager steps, bf16 teacher, optimizer implementation."""

import copy

import pytest
import torch
from torch import nn

import advdistill as ad
from advdistill import hookimpl
from advdistill.engine import speed
from advdistill.engine.checkpoint import save_weights
from advdistill.engine.trainer import Trainer
from advdistill.errors import RecipeError
from advdistill.interfaces import ModelFactory, Progress


class TinyBNNet(ModelFactory):
    """conv-BatchNorm-ReLU, pooled, linear: a BatchNorm student that compiles in seconds."""

    def build(self, num_classes, in_chans):
        return nn.Sequential(nn.Conv2d(in_chans, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, num_classes))


class TinyBNPlugin:
    @hookimpl
    def register_models(self, register):
        register("tiny_bn_net", TinyBNNet, summary="test model")


@pytest.fixture
def step(tiny_recipe, tmp_path, register_plugin):
    """``step(name, **train)``: a Trainer and its first step (loss, updated weights) from fixed seeds.

    AdaAD + IGDM with a BatchNorm student: the attack with the teacher in the loop and the student
    in eval mode, the batched teacher points, three student forwards in train mode.
    """
    register_plugin(TinyBNPlugin(), name="tiny_bn")
    torch.manual_seed(5)
    teacher_arch = {"kind": "small_cnn", "widths": [6], "hidden": 8}
    save_weights(tmp_path / "teacher.safetensors", ad.create_model("small_cnn", num_classes=4, in_chans=1,
                                                                   widths=[6], hidden=8))

    def run(name, **train):
        torch.manual_seed(0)
        recipe = tiny_recipe(
            f"{name}.toml", student={"kind": "tiny_bn_net"},
            teacher={"kind": "checkpoint", "path": str(tmp_path / "teacher.safetensors"), "model": teacher_arch},
            attack={"kind": "adaad_kl", "steps": 2}, objective={"kind": "adaad"},
            aux={"igdm": {"kind": "igdm", "alpha": 2.0}},
            train={"epochs": 1, "batch_size": 16, "device": "cpu", **train},
        )
        trainer = Trainer(ad.load_recipe(recipe), tmp_path / name)
        x, y = next(iter(trainer.train_loader))
        trainer.attack_generator.manual_seed(7)
        loss = trainer.train_step(x, y, Progress(1, 1), 0.05)[0]
        return trainer, float(loss), {k: v.clone() for k, v in trainer.student.state_dict().items()}

    return run


def _assert_same_step(a, b, rtol):
    _, loss_a, weights_a = a
    _, loss_b, weights_b = b
    assert loss_a == pytest.approx(loss_b, rel=rtol)
    for key in weights_a:
        assert torch.allclose(weights_a[key].float(), weights_b[key].float(), rtol=rtol, atol=1e-6), key


@pytest.mark.slow  # ~13 s on 2 busy cores, half of it importing the compiler
def test_compiled_step_wiring_agrees_with_eager(step, monkeypatch):
    """Fast: the compiled student and teacher (captured by dynamo, run without code generation)
    are the ones the attack and the losses call, and the step equals the eager one."""
    compiled = []

    def traced(model, mode):
        compiled.append(model)
        return torch.compile(model, backend="eager", dynamic=False)

    monkeypatch.setattr("advdistill.engine.trainer.compile_model", traced)
    eager = step("eager")
    torch._dynamo.reset()
    fast = step("compiled", compile=True, compile_teacher=True)
    trainer = fast[0]
    assert compiled == [trainer.student, trainer.teacher]
    assert trainer.attack_student is not trainer.student and trainer.step_teacher is not trainer.teacher
    assert type(trainer.student).__name__ != "OptimizedModule"  # evaluation keeps the eager models
    _assert_same_step(eager, fast, rtol=1e-5)


@pytest.mark.slow  # ~60 s on 2 busy cores: Inductor writes and compiles C++ kernels
def test_compiled_step_agrees_with_eager(step):
    """torch.compile with Inductor (C++ kernels on CPU): loss and updated weights as in eager mode."""
    eager = step("eager")
    torch._dynamo.reset()
    compiled = step("compiled", compile=True, compile_teacher=True)
    _assert_same_step(eager, compiled, rtol=1e-4)


def test_optimizer_impl_selects_the_implementation_and_keeps_the_result(step):
    results = {}
    for impl in ("for_loop", "foreach", "fused", "auto"):
        trainer, loss, weights = step(impl, optimizer_impl=impl)
        defaults = trainer.optimizer.defaults
        assert (defaults.get("foreach"), defaults.get("fused")) == {
            "for_loop": (False, None), "foreach": (True, None), "fused": (None, True), "auto": (None, None),
        }[impl]
        results[impl] = (trainer, loss, weights)
    for impl in ("foreach", "fused", "auto"):
        _assert_same_step(results["for_loop"], results[impl], rtol=1e-5)


def test_bf16_teacher_computes_what_autocast_computes_and_leaves_the_teacher_alone():
    torch.manual_seed(0)
    teacher = TinyBNNet().build(num_classes=10, in_chans=3).eval().requires_grad_(False)
    before = copy.deepcopy(teacher.state_dict())
    fast = speed.BF16Teacher(teacher)
    x = torch.rand(4, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = teacher(x).float()
    out = fast(x)
    assert out.dtype == torch.float32 and torch.equal(out, expected)
    assert not fast.training and not any(p.requires_grad for p in fast.parameters())
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in fast.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.weight.dtype == torch.bfloat16 for m in convs)
    assert all(m.weight.dtype == torch.float32 for m in norms)
    assert all(torch.equal(v, before[k]) and v.dtype == before[k].dtype for k, v in teacher.state_dict().items())
    # the input gradient flows through it (AdaAD's inner maximization)
    x.requires_grad_(True)
    fast(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_cuda_only_settings_are_ignored_on_cpu(step):
    benchmark = torch.backends.cudnn.benchmark
    trainer, _, _ = step("cpu", teacher_bf16=True, cudnn_benchmark=True)
    assert trainer.step_teacher is trainer.teacher and trainer.attack_student is trainer.student
    assert torch.backends.cudnn.benchmark == benchmark


def test_speed_keys_are_validated(tiny_recipe):
    with pytest.raises(RecipeError, match=r"compile_mode.*reduce-overhead"):
        ad.load_recipe(tiny_recipe(train={"compile_mode": "fast"}))
    with pytest.raises(RecipeError, match=r"optimizer_impl.*fused"):
        ad.load_recipe(tiny_recipe(train={"optimizer_impl": "apex"}))
    recipe = ad.load_recipe(tiny_recipe())
    train = recipe.train
    assert (train.compile, train.compile_mode, train.compile_teacher, train.teacher_bf16, train.optimizer_impl,
            train.cudnn_benchmark) == (False, "default", False, False, "auto", False)
