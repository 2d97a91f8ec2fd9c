import pytest
from conftest import B, C
from objective_reference import assert_same_value_and_gradient, kl1, softmax1

import advdistill as ad
from advdistill.testing import check_objective, check_objective_gradient


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
