import pytest
import torch
import torch.nn.functional as F
from attack_reference import linf_step, normal_start
from conftest import B
from objective_reference import assert_same_value_and_gradient, ce1, kl1, softmax1

import advdistill as ad
from advdistill.testing import check_attack, check_objective, check_objective_gradient


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


# -- the inner maximization (trades_kl) ----------------------------------------------------------

EPS, STEP, STEPS = 8 / 255, 2 / 255, 4


def naive_trades_attack(model, x, seed):
    """Official trades.py inner loop, one example at a time (KL summed over classes)."""
    with torch.no_grad():
        p_nat = [F.softmax(model(x[i : i + 1]), dim=1)[0] for i in range(len(x))]
    x_adv = normal_start(x, seed)
    for _ in range(STEPS):
        x_adv = x_adv.clone().requires_grad_(True)
        loss = 0.0
        for i in range(len(x)):
            log_q = F.log_softmax(model(x_adv[i : i + 1]), dim=1)[0]
            loss = loss + sum(p_nat[i][k] * (p_nat[i][k].log() - log_q[k]) for k in range(len(log_q)))
        (grad,) = torch.autograd.grad(loss, [x_adv])
        x_adv = linf_step(x_adv, grad, x, EPS, STEP)
    return x_adv


@pytest.mark.parametrize("train_mode", [True, False])
def test_trades_kl_contract(tiny_net, edge_batch, train_mode):
    x, y = edge_batch
    tiny_net.train(train_mode)
    check_attack(ad.build("attack", "trades_kl", steps=STEPS), tiny_net, x, y)


def test_trades_kl_matches_the_official_loop(tiny_net, edge_batch):
    x, y = edge_batch
    tiny_net.eval()
    attack = ad.build("attack", "trades_kl", steps=STEPS)
    ours = attack.perturb(tiny_net, x, y, generator=torch.Generator().manual_seed(9))
    assert torch.allclose(ours, naive_trades_attack(tiny_net, x, 9), atol=1e-6)


def test_zero_steps_still_returns_a_valid_point(tiny_net, edge_batch):
    x, y = edge_batch
    x_adv = ad.build("attack", "trades_kl", steps=0).perturb(tiny_net, x, y)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-7
    assert not torch.equal(x_adv, x)  # the random start is kept where it is valid


def test_trades_kl_target_is_the_student_in_the_attack_mode(tiny_net, edge_batch):
    """In train mode the clean target uses batch statistics; the loop must see the same mode."""
    x, y = edge_batch
    tiny_net.train()
    attack = ad.build("attack", "trades_kl", steps=1, start="none")
    with torch.no_grad():
        target = tiny_net(x)
    prepared = attack.prepare(tiny_net, x, y, None, None)
    assert torch.allclose(prepared, target)
