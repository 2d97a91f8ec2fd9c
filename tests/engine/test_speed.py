"""The [train] speed settings: compiled vs eager steps, bf16 teacher, optimizer implementation."""

import copy

import pytest
import torch

import advdistill as ad
from advdistill.engine import speed
from advdistill.errors import RecipeError


@pytest.mark.slow  # ~13 s on 2 busy cores, half of it importing the compiler
def test_compiled_step_wiring_agrees_with_eager(distill_steps, assert_same_steps, monkeypatch):
    """Fast: the compiled student and teacher (captured by dynamo, run without code generation)
    are the ones the attack and the losses call, and the step equals the eager one."""
    compiled = []

    def traced(model, mode):
        compiled.append(model)
        return torch.compile(model, backend="eager", dynamic=False)

    monkeypatch.setattr("advdistill.engine.trainer.compile_model", traced)
    eager = distill_steps("eager")
    torch._dynamo.reset()
    fast = distill_steps("compiled", compile=True, compile_teacher=True)
    trainer = fast[0]
    assert compiled == [trainer.student, trainer.teacher]
    assert trainer.attack_student is not trainer.student and trainer.step_teacher is not trainer.teacher
    assert type(trainer.student).__name__ != "OptimizedModule"  # evaluation keeps the eager models
    assert_same_steps(eager, fast, rtol=1e-5)


@pytest.mark.slow  # ~60 s on 2 busy cores: Inductor writes and compiles C++ kernels
def test_compiled_step_agrees_with_eager(distill_steps, assert_same_steps):
    """torch.compile with Inductor (C++ kernels on CPU): loss and updated weights as in eager mode."""
    eager = distill_steps("eager")
    torch._dynamo.reset()
    compiled = distill_steps("compiled", compile=True, compile_teacher=True)
    assert_same_steps(eager, compiled, rtol=1e-4)


def test_optimizer_impl_selects_the_implementation_and_keeps_the_result(distill_steps, assert_same_steps):
    results = {}
    for impl in ("for_loop", "foreach", "fused", "auto"):
        trainer, loss, weights = distill_steps(impl, optimizer_impl=impl)
        defaults = trainer.optimizer.defaults
        assert (defaults.get("foreach"), defaults.get("fused")) == {
            "for_loop": (False, None), "foreach": (True, None), "fused": (None, True), "auto": (None, None),
        }[impl]
        results[impl] = (trainer, loss, weights)
    for impl in ("foreach", "fused", "auto"):
        assert_same_steps(results["for_loop"], results[impl], rtol=1e-5)


def test_bf16_teacher_computes_what_autocast_computes_and_leaves_the_teacher_alone(tiny_bn_net):
    torch.manual_seed(0)
    teacher = tiny_bn_net(10, 3).eval().requires_grad_(False)
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


def test_cuda_only_settings_are_ignored_on_cpu(distill_steps):
    benchmark = torch.backends.cudnn.benchmark
    trainer, _, _ = distill_steps("cpu", teacher_bf16=True, cudnn_benchmark=True)
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
