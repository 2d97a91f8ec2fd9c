import pytest
import torch
import torch.nn.functional as F
from attack_reference import linf_step, normal_start
from conftest import B, C
from objective_reference import assert_same_value_and_gradient, kl1, softmax1

import advdistill as ad
from advdistill.testing import check_attack, check_objective, check_objective_gradient


def naive_adaad(student, teacher, x, x_adv, y, alpha, reduction):
    """α·KL(p_T(x_adv) ‖ p_S(x_adv)) + (1 − α)·KL(p_T(x) ‖ p_S(x)); sums / (B·C) or / B."""
    adv, nat = 0.0, 0.0
    for i in range(B):
        xa, xc = x_adv[i : i + 1], x[i : i + 1]
        adv = adv + kl1(softmax1(teacher(xa)[0]), softmax1(student(xa)[0]))
        nat = nat + kl1(softmax1(teacher(xc)[0]), softmax1(student(xc)[0]))
    divisor = B * C if reduction == "mean" else B
    return (alpha * adv + (1 - alpha) * nat) / divisor


@pytest.mark.parametrize("alpha", [1.0, 0.6])
@pytest.mark.parametrize("reduction", ["mean", "batchmean"])
def test_adaad_matches_naive_value_and_gradient(models, data, make_context, alpha, reduction):
    student, teacher = models
    x, x_adv, y = data
    ours = check_objective(ad.build("objective", "adaad", alpha=alpha, reduction=reduction), make_context())
    reference = naive_adaad(student, teacher, x, x_adv, y, alpha, reduction)
    assert_same_value_and_gradient(ours, reference, student)


def test_adaad_default_is_the_official_cifar10_loss(models, data, make_context):
    student, teacher = models
    x, x_adv, y = data
    ours = ad.build("objective", "adaad")(make_context())
    reference = naive_adaad(student, teacher, x, x_adv, y, 1.0, "mean")
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)


def test_adaad_skips_the_clean_teacher_only_when_alpha_is_always_one():
    assert ad.build("objective", "adaad").teacher_points() == (1.0,)
    assert ad.build("objective", "adaad", alpha=0.9).teacher_points() == (0.0, 1.0)
    scheduled = ad.build("objective", "adaad", alpha={"kind": "linear", "start": 0.5, "end": 1.0})
    assert scheduled.teacher_points() == (0.0, 1.0)


def test_adaad_alpha_schedule(models, data, make_context):
    student, teacher = models
    x, x_adv, y = data
    adaad = ad.build("objective", "adaad", alpha={"kind": "linear", "start": 0.5, "end": 1.0})
    ours = adaad(make_context(epoch=2, epochs=4))  # α = 0.5 + 0.5·2/4
    reference = naive_adaad(student, teacher, x, x_adv, y, 0.75, "mean")
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)


def test_adaad_gradient_matches_finite_differences(make_context):
    check_objective_gradient(ad.build("objective", "adaad", alpha=0.5, reduction="batchmean"), make_context)


# -- the inner maximization (adaad_kl): the teacher in the loop ----------------------------------

A_EPS, A_STEP, A_STEPS = 0.05, 0.01, 4


def naive_adaad_attack(student, teacher, x, seed, detach_teacher=False):
    """Official adaad_inner_loss: ascend Σ KL(p_T(x') ‖ p_S(x')), gradient through both models."""
    x_adv = normal_start(x, seed)
    for _ in range(A_STEPS):
        x_adv = x_adv.clone().requires_grad_(True)
        loss = 0.0
        for i in range(len(x)):
            xi = x_adv[i : i + 1]
            t = teacher(xi)[0]
            t = t.detach() if detach_teacher else t
            p, log_q = F.softmax(t, dim=0), F.log_softmax(student(xi)[0], dim=0)
            loss = loss + (p * (p.log() - log_q)).sum()
        (grad,) = torch.autograd.grad(loss, [x_adv])
        x_adv = linf_step(x_adv, grad, x, A_EPS, A_STEP)
    return x_adv


@pytest.mark.parametrize("train_mode", [True, False])
def test_adaad_kl_contract(tiny_net, tiny_teacher, batch, train_mode):
    x, y = batch
    tiny_net.train(train_mode)
    check_attack(ad.build("attack", "adaad_kl", steps=A_STEPS), tiny_net, x, y, teacher=tiny_teacher)


def test_adaad_kl_matches_the_official_loop_with_the_teacher_in_the_gradient(tiny_net, tiny_teacher, batch):
    x, y = batch
    tiny_net.eval()
    attack = ad.build("attack", "adaad_kl", eps=A_EPS, step_size=A_STEP, steps=A_STEPS)
    ours = attack.perturb(tiny_net, x, y, teacher=tiny_teacher, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(ours, naive_adaad_attack(tiny_net, tiny_teacher, x, 4), atol=1e-6)
    # the test can tell: a detached teacher gives another x_adv
    detached = naive_adaad_attack(tiny_net, tiny_teacher, x, 4, detach_teacher=True)
    assert not torch.allclose(ours, detached, atol=1e-6)


def test_adaad_kl_leaves_the_teacher_frozen(tiny_net, tiny_teacher, batch):
    x, y = batch
    ad.build("attack", "adaad_kl", steps=2).perturb(tiny_net, x, y, teacher=tiny_teacher)
    assert all(not p.requires_grad and p.grad is None for p in tiny_teacher.parameters())
    assert not tiny_teacher.training


def test_adaad_kl_needs_a_teacher(tiny_net, batch):
    x, y = batch
    with pytest.raises(ValueError, match="needs a teacher"):
        ad.build("attack", "adaad_kl").perturb(tiny_net, x, y)
