"""AWP against the official algorithm written out naively (a proxy copy, one SGD step on −L,
diff_in_weights, perturb, the optimizer's step, restore), on a tiny model and in the engine."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import advdistill as ad
from advdistill import hookimpl
from advdistill.interfaces import AuxLoss
from advdistill.testing import TINY_RECIPE, check_step_extension, make_train_step, tiny_model
from advdistill.torch_utils import module_mode
from advdistill_plugins.step_extensions.awp import AWP, AWPConfig, perturbed_weights

OFFICIAL_EPS = 1e-20


def official_step(model, optimizer, x_adv, y, gamma, loss_fn):
    """One training step of the official AT-AWP loop (AT_AWP/utils_awp.py, train_cifar10.py), verbatim in spirit."""
    # calc_awp: a proxy with the model's weights takes one SGD step (lr 0.01) on −L, in train mode
    proxy = copy.deepcopy(model)
    proxy.load_state_dict(model.state_dict())
    proxy.train()
    proxy_optim = torch.optim.SGD(proxy.parameters(), lr=0.01)
    proxy_optim.zero_grad()
    (-loss_fn(proxy, x_adv, y)).backward()
    proxy_optim.step()
    # diff_in_weights: skip 1-D tensors, keep those named weight, scale to the layer's norm
    diff = {}
    for (old_k, old_w), (_, new_w) in zip(model.state_dict().items(), proxy.state_dict().items()):
        if len(old_w.size()) <= 1:
            continue
        if "weight" in old_k:
            diff_w = new_w - old_w
            diff[old_k] = old_w.norm() / (diff_w.norm() + OFFICIAL_EPS) * diff_w

    def add_into_weights(coeff):
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in diff:
                    param.add_(coeff * diff[name])

    add_into_weights(1.0 * gamma)  # perturb
    loss = loss_fn(model, x_adv, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    add_into_weights(-1.0 * gamma)  # restore
    return diff


def cross_entropy(model, x, y):
    return F.cross_entropy(model(x), y)


@pytest.mark.parametrize("gamma", [0.005, 0.05])
def test_awp_equals_the_official_algorithm_on_a_tiny_model(tiny_step, gamma):
    torch.set_default_dtype(torch.float64)  # the official diff (w + lr·g) − w loses digits in float32
    try:
        ours = tiny_model(seed=1).double().train()
        theirs = copy.deepcopy(ours)
        x, y = tiny_step.x.double(), tiny_step.y
        x_adv = tiny_step.x_adv.double()
        opt_ours = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        awp = AWP(AWPConfig(gamma=gamma))
        for _ in range(3):
            ctx = ad_context(ours, x, y, x_adv)
            step = make_train_step(ctx, opt_ours)
            awp.before_loss(step)
            loss = F.cross_entropy(ctx.student_logits(1.0), y)
            opt_ours.zero_grad()
            loss.backward()
            awp.before_update(step)
            opt_ours.step()
            awp.after_update(step)
            official_step(theirs, opt_theirs, x_adv, y, gamma, cross_entropy)
            for key, value in theirs.state_dict().items():
                # float64 weights; the step context hands losses float32 logits (relative error ~1e-8)
                assert torch.allclose(ours.state_dict()[key], value, rtol=1e-6, atol=1e-8), key
        # and the perturbation did something: plain steps end elsewhere
        plain = copy.deepcopy(tiny_model(seed=1).double().train())
        opt_plain = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        for _ in range(3):
            opt_plain.zero_grad()
            F.cross_entropy(plain(x_adv), y).backward()
            opt_plain.step()
        assert not torch.allclose(plain[0].weight, ours[0].weight, atol=1e-6)
    finally:
        torch.set_default_dtype(torch.float32)


def ad_context(model, x, y, x_adv):
    from advdistill.testing import make_step_context

    return make_step_context(model, None, x, y, x_adv)


def test_the_perturbation_formula_layer_by_layer(tiny_step):
    """v_l = γ·‖w_l‖·g_l/‖g_l‖ for conv and linear weights; biases and BatchNorm untouched."""
    model = tiny_model(seed=1).train()
    ctx = tiny_step.context()
    ctx = ad_context(model, ctx.x, ctx.y, ctx.x_adv)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = [name for name, _ in perturbed_weights(model)]
    assert names == ["0.weight", "5.weight"]  # the conv and the linear layer; not BatchNorm's 1-D weight
    twin = copy.deepcopy(model)  # the reference gradient, on a copy (its forward updates its BN statistics)
    loss = F.cross_entropy(twin(ctx.x_adv), ctx.y)
    grads = dict(zip(names, torch.autograd.grad(loss, [p for _, p in perturbed_weights(twin)])))
    awp = AWP(AWPConfig(gamma=0.02))
    awp.before_loss(make_train_step(ctx))
    for key, value in model.state_dict().items():
        if key in grads:
            g = grads[key]
            expected = before[key] + 0.02 * before[key].norm() * g / g.norm()
            assert torch.allclose(value, expected, rtol=1e-5, atol=1e-7), key
        else:
            assert torch.equal(value, before[key]), f"{key} must not be perturbed (or its statistics updated)"


def test_awp_keeps_the_step_extension_contract(tiny_step):
    check_step_extension(AWP(AWPConfig(gamma=0.01)), tiny_step.context())


def test_before_start_epoch_nothing_is_perturbed(tiny_step):
    model = tiny_model(seed=1).train()
    ctx = ad_context(model, tiny_step.x, tiny_step.y, tiny_step.x_adv)
    ctx.progress = ctx.progress.__class__(epoch=1, epochs=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    awp = AWP(AWPConfig(gamma=0.01, start_epoch=2))
    awp.before_loss(make_train_step(ctx))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_awp_in_the_engine_equals_the_official_step(tiny_recipe, tmp_path):
    """The trainer's step with [step_extensions.awp]: the attack at the unperturbed weights (x_adv is
    not changed by AWP), the perturbation from the recipe's objective at x_adv, the update at the
    perturbed weights, the restore — the official loop, on the engine's own batch and attack."""
    from advdistill.engine.trainer import Trainer
    from advdistill.progress import Progress

    recipe = ad.load_recipe(tiny_recipe(
        step_extensions={"awp": {"kind": "awp", "gamma": 0.01}},
        optim={"kind": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
    ))
    trainer = Trainer(recipe, tmp_path / "run")
    try:
        reference = copy.deepcopy(trainer.student)
        opt_ref = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        trainer.train_loader.set_epoch(1)
        trainer.attack_generator.manual_seed(7)
        reference_generator = torch.Generator().manual_seed(7)
        for step, (x, y) in enumerate(trainer.train_loader):
            if step == 2:
                break
            with module_mode(reference, False):  # train.attack_bn = "eval"
                x_adv = trainer.attack.perturb(reference, x, y, generator=reference_generator)
            reference.train()
            official_step(reference, opt_ref, x_adv, y, 0.01, cross_entropy)
            trainer.train_step(x, y, Progress(1, 1, step, trainer.steps_per_epoch), 0.05)
            for key, value in reference.state_dict().items():
                assert torch.allclose(trainer.student.state_dict()[key], value, rtol=1e-4, atol=1e-6), (step, key)
    finally:
        trainer.close()


class CountingAux(AuxLoss):
    """0 · (the student's mean logit), counting its calls."""

    calls = 0

    def __call__(self, ctx):
        CountingAux.calls += 1
        return 0.0 * ctx.student_logits(1.0).mean()


class CountingPlugin:
    @hookimpl
    def register_aux(self, register):
        register("counting", CountingAux, summary="counts its calls (test)")


@pytest.mark.parametrize(("loss", "calls_per_step"), [("objective", 1), ("total", 2)])
def test_the_loss_awp_raises_is_the_objective_or_the_total(loss, calls_per_step, tiny_recipe, tmp_path,
                                                           register_plugin):
    """loss = "total" evaluates the aux losses (e.g. IGDM) for the perturbation too; "objective" does not."""
    register_plugin(CountingPlugin(), name="counting")
    CountingAux.calls = 0
    recipe = tiny_recipe(
        step_extensions={"awp": {"kind": "awp", "gamma": 0.01, "loss": loss}},
        aux={"count": {"kind": "counting"}}, eval={"at_end": False},
        train={**TINY_RECIPE["train"], "max_steps_per_epoch": 3},
    )
    run = ad.train(recipe, tmp_path / "run")
    assert CountingAux.calls == 3 * calls_per_step
    saved = ad.load_recipe(run / "recipe.json")
    assert saved.step_extensions["awp"].config == AWPConfig(gamma=0.01, loss=loss)
