import pytest
import torch
from conftest import B
from objective_reference import assert_same_value_and_gradient, softmax1

import advdistill as ad
from advdistill.testing import check_objective, check_objective_gradient


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
    from advdistill_plugins.objectives.mart import strongest_wrong_class

    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.1, 0.7]])
    assert strongest_wrong_class(probs, torch.tensor([0, 0, 2])).tolist() == [1, 1, 0]
