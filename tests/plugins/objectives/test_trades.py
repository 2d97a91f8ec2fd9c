import pytest
import torch
from conftest import B
from objective_reference import assert_same_value_and_gradient, ce1, kl1, softmax1

import advdistill as ad
from advdistill.testing import check_objective, check_objective_gradient


def naive_trades(student, x, x_adv, y, beta, detach_clean=False):
    """CE(S(x), y) averaged + β·(1/B)·Σ_i KL(p_S(x_i) ‖ p_S(x_adv_i)), one example at a time."""
    ce, kl = 0.0, 0.0
    for i in range(B):
        s_nat, s_adv = student(x[i : i + 1])[0], student(x_adv[i : i + 1])[0]
        p_nat = softmax1(s_nat)
        ce = ce + ce1(s_nat, int(y[i]))
        kl = kl + kl1(p_nat.detach() if detach_clean else p_nat, softmax1(s_adv))
    return ce / B + beta * kl / B


@pytest.mark.parametrize("detach_clean", [False, True])
def test_trades_matches_naive_value_and_gradient(models, data, make_context, detach_clean):
    student, _ = models
    x, x_adv, y = data
    trades = ad.build("objective", "trades", detach_clean=detach_clean)
    ours = check_objective(trades, make_context(teacher_model=None))
    reference = naive_trades(student, x, x_adv, y, beta=6.0, detach_clean=detach_clean)
    assert_same_value_and_gradient(ours, reference, student)


def test_trades_detaching_the_clean_branch_changes_the_gradient(models, make_context):
    student, _ = models
    grads = []
    for detach in (False, True):
        loss = ad.build("objective", "trades", detach_clean=detach)(make_context(teacher_model=None))
        grads.append(torch.autograd.grad(loss, student.weight)[0])
    assert not torch.allclose(grads[0], grads[1])


def test_trades_beta_can_be_scheduled(models, data, make_context):
    student, _ = models
    x, x_adv, y = data
    trades = ad.build("objective", "trades", beta={"kind": "linear", "end": 6.0})
    ours = trades(make_context(epoch=5, epochs=10, teacher_model=None))
    assert ours.item() == pytest.approx(naive_trades(student, x, x_adv, y, beta=3.0).item(), rel=1e-5)


def test_trades_gradient_matches_finite_differences(make_context):
    check_objective_gradient(ad.build("objective", "trades"), lambda: make_context(teacher_model=None))


def test_trades_runs_clean_and_adversarial_passes_separately(models, make_context):
    student, _ = models
    calls = []
    student.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    ad.build("objective", "trades")(make_context(teacher_model=None))
    assert calls == [B, B]  # BatchNorm statistics would differ in one batched pass of 2B
