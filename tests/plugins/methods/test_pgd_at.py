from conftest import B
from objective_reference import assert_same_value_and_gradient, ce1

import advdistill as ad
from advdistill.testing import check_objective, check_objective_gradient


def test_pgd_at_is_the_mean_cross_entropy_at_x_adv(models, data, make_context):
    student, _ = models
    _, x_adv, y = data
    ours = check_objective(ad.build("objective", "pgd_at"), make_context(teacher_model=None))
    reference = sum(ce1(student(x_adv[i : i + 1])[0], int(y[i])) for i in range(B)) / B
    assert_same_value_and_gradient(ours, reference, student)


def test_pgd_at_gradient_matches_finite_differences(make_context):
    check_objective_gradient(ad.build("objective", "pgd_at"), lambda: make_context(teacher_model=None))
