import pytest
import torch
import torch.nn.functional as F
from attack_reference import linf_step, normal_start
from conftest import B
from objective_reference import assert_same_value_and_gradient, softmax1

import advdistill as ad
from advdistill.testing import check_attack, check_objective, check_objective_gradient


def naive_mart_official(student, x, x_adv, y, beta):
    """YisenWang/MART mart.py, one example at a time (argsort for the strongest wrong class)."""
    bce, robust = 0.0, 0.0
    for i in range(B):
        label = int(y[i])
        p_nat = softmax1(student(x[i : i + 1])[0])
        p_adv = softmax1(student(x_adv[i : i + 1])[0])
        top2 = torch.argsort(p_adv)[-2:]
        wrong = int(top2[-2]) if int(top2[-1]) == label else int(top2[-1])
        bce = bce - torch.log(p_adv[label]) - torch.log(1.0001 - p_adv[wrong] + 1e-12)
        kl = sum(p_nat[k] * (torch.log(p_nat[k]) - torch.log(p_adv[k] + 1e-12)) for k in range(len(p_nat)))
        robust = robust + kl * (1.0000001 - p_nat[label])
    return bce / B + beta * robust / B


def naive_mart_exact(student, x, x_adv, y, beta):
    """The paper's formula: BCE with −log(1 − max_{k≠y} p_k), exact KL weighted by 1 − p_y(x)."""
    bce, robust = 0.0, 0.0
    for i in range(B):
        label = int(y[i])
        p_nat = softmax1(student(x[i : i + 1])[0])
        p_adv = softmax1(student(x_adv[i : i + 1])[0])
        wrong_probs = torch.stack([p_adv[k] for k in range(len(p_adv)) if k != label])
        bce = bce - torch.log(p_adv[label]) - torch.log(1 - wrong_probs.max())
        kl = sum(p_nat[k] * torch.log(p_nat[k] / p_adv[k]) for k in range(len(p_nat)))
        robust = robust + kl * (1 - p_nat[label])
    return bce / B + beta * robust / B


@pytest.mark.parametrize("form,naive", [("official", naive_mart_official), ("exact", naive_mart_exact)])
def test_mart_matches_naive_value_and_gradient(models, data, make_context, form, naive):
    student, _ = models
    x, x_adv, y = data
    ours = check_objective(ad.build("objective", "mart", form=form), make_context(teacher_model=None))
    assert_same_value_and_gradient(ours, naive(student, x, x_adv, y, beta=6.0), student)


def test_mart_beta_weighs_the_robust_term(models, data, make_context):
    student, _ = models
    x, x_adv, y = data
    ours = ad.build("objective", "mart", beta=0.5)(make_context(teacher_model=None))
    assert ours.item() == pytest.approx(naive_mart_official(student, x, x_adv, y, beta=0.5).item(), rel=1e-5)


def test_mart_gradient_matches_finite_differences(make_context):
    check_objective_gradient(ad.build("objective", "mart"), lambda: make_context(teacher_model=None))


def test_strongest_wrong_class():
    from advdistill_plugins.methods.mart import strongest_wrong_class

    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.1, 0.7]])
    assert strongest_wrong_class(probs, torch.tensor([0, 0, 2])).tolist() == [1, 1, 0]


# -- the inner maximization (mart) ----------------------------------------------------------------

EPS, STEP, STEPS = 8 / 255, 2 / 255, 4


def naive_mart_attack(model, x, y, seed):
    """Official mart.py inner loop: CE averaged over the batch, start not clamped."""
    x_adv = normal_start(x, seed)
    for _ in range(STEPS):
        x_adv = x_adv.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), [x_adv])
        x_adv = linf_step(x_adv, grad, x, EPS, STEP)
    return x_adv


@pytest.mark.parametrize("train_mode", [True, False])
def test_mart_attack_contract(tiny_net, edge_batch, train_mode):
    x, y = edge_batch
    tiny_net.train(train_mode)
    check_attack(ad.build("attack", "mart", steps=STEPS), tiny_net, x, y)


def test_mart_matches_the_official_loop(tiny_net, edge_batch):
    x, y = edge_batch
    tiny_net.eval()
    attack = ad.build("attack", "mart", steps=STEPS)
    ours = attack.perturb(tiny_net, x, y, generator=torch.Generator().manual_seed(9))
    assert torch.allclose(ours, naive_mart_attack(tiny_net, x, y, 9), atol=1e-6)
    # the test can tell: a clamped start (PGD's default) ends elsewhere on the 0/1 pixels
    clamped = ad.build("attack", "mart", steps=STEPS, clamp_start=True)
    other = clamped.perturb(tiny_net, x, y, generator=torch.Generator().manual_seed(9))
    assert not torch.allclose(other, ours)
