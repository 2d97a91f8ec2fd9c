"""How reports print numbers: accuracies with two decimals, other values with three (small ones with
three significant digits)."""

import pytest

from advdistill.evaluation.formatting import format_metric, format_number, is_accuracy


@pytest.mark.parametrize(("value", "text"), [(0.612, "0.612"), (2.34567, "2.346"), (0.0123, "0.0123"),
                                             (1.234e-5, "1.23e-05"), (0.0, "0.000"), (-0.5, "-0.500")])
def test_numbers(value, text):
    assert format_number(value) == text


def test_accuracies_are_known_from_metric_info_else_by_their_key():
    assert is_accuracy("clean") and is_accuracy("pgd20") and is_accuracy("autoattack_l2") and is_accuracy("pgd_l1")
    assert is_accuracy("transfer_vmi_fgsm") and not is_accuracy("gd") and not is_accuracy("pointwise_adv")
    assert is_accuracy("mine", {"mine": {"unit": "%"}}) and not is_accuracy("pgd20", {"pgd20": {"unit": None}})
    assert format_metric("clean", 0.5) == "0.50" and format_metric("gd", 0.5) == "0.500"
    assert format_metric("x", None) == "–" and format_metric("x", "text") == "text"
    assert format_metric("autoattack_n", 10) == "10"  # a count, not a measurement
