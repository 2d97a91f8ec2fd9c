import pytest
from conftest import B, C
from objective_reference import assert_same_value_and_gradient, ce1, kl1, softmax1

import advdistill as ad
from advdistill.errors import RecipeError
from advdistill.testing import check_objective, check_objective_gradient


def naive_ard(student, teacher, x, x_adv, y, tau, alpha, reduction):
    """α·τ²·KL(p_T(x)/τ ‖ p_S(x_adv)/τ) + (1 − α)·CE(S(x), y); KL summed then / (B·C) or / B."""
    kl, ce = 0.0, 0.0
    for i in range(B):
        p_t = softmax1(teacher(x[i : i + 1])[0], tau)
        kl = kl + kl1(p_t, softmax1(student(x_adv[i : i + 1])[0], tau))
        ce = ce + ce1(student(x[i : i + 1])[0], int(y[i]))
    kl = kl / (B * C) if reduction == "mean" else kl / B
    return alpha * tau**2 * kl + (1 - alpha) * ce / B


@pytest.mark.parametrize(
    "params,tau,alpha,reduction",
    [({}, 30.0, 1.0, "mean"),  # the official defaults
     ({"temperature": 4, "alpha": 0.7, "reduction": "batchmean"}, 4.0, 0.7, "batchmean"),
     ({"temperature": 1, "alpha": 0.25}, 1.0, 0.25, "mean")],
)
def test_ard_matches_naive_value_and_gradient(models, data, make_context, params, tau, alpha, reduction):
    student, teacher = models
    x, x_adv, y = data
    ours = check_objective(ad.build("objective", "ard", **params), make_context())
    reference = naive_ard(student, teacher, x, x_adv, y, tau, alpha, reduction)
    assert_same_value_and_gradient(ours, reference, student)


def test_ard_gradient_matches_finite_differences(make_context):
    check_objective_gradient(ad.build("objective", "ard", temperature=2, alpha=0.5), make_context)


def test_ard_reads_only_the_clean_teacher():
    assert ad.build("objective", "ard").teacher_points() == (0.0,)


def test_ard_without_a_teacher_is_a_recipe_error_naming_the_table(tiny_recipe):
    path = tiny_recipe(objective={"kind": "ard"})
    with pytest.raises(RecipeError) as info:
        ad.load_recipe(path)
    message = str(info.value)
    assert "[objective]" in message and "'ard' needs a teacher" in message and "[teacher]" in message
