"""Check ``ordering`` on fabricated numbers and per-image records (AA ≤ PGD ≤ clean, ε monotone,
robust images that are misclassified clean)."""

import pytest
import torch
from check_models import declared_threats

import advdistill as ad
from advdistill.evaluation.checks.base import CheckInputs, robust_results
from advdistill.evaluation.checks.ordering import check_ordering
from advdistill.evaluation.context import EvalContext
from advdistill.recipe.schema import ChecksConfig

N = 8


def inputs(values, records=None, metrics=None):
    metrics = metrics if metrics is not None else {"pgd": ad.build("metric", "pgd"),
                                                   "aa": ad.build("metric", "autoattack")}
    records = records or {}
    ctx = EvalContext(model=torch.nn.Identity(), images=torch.zeros(N, 1, 2, 2, dtype=torch.uint8),
                      labels=torch.zeros(N, dtype=torch.long), device=torch.device("cpu"))
    threats = declared_threats(metrics, values)
    return CheckInputs(ctx=ctx, metrics=metrics, values=values, records=records, config=ChecksConfig(),
                       robust=robust_results(metrics, values, records, threats), threats=threats)


def flags(*bits):
    return torch.tensor(bits, dtype=torch.bool)


CLEAN = flags(1, 1, 1, 1, 1, 1, 0, 0)  # 75 %
PGD = flags(1, 1, 1, 1, 0, 0, 0, 0)  # 50 %
AA = flags(1, 1, 1, 0, 0, 0, 0, 0)  # 37.5 %


def test_consistent_numbers_pass_and_say_so():
    result = check_ordering(inputs({"clean": 75.0, "pgd20": 50.0, "autoattack": 37.5},
                                   {"clean": CLEAN, "pgd20": PGD, "autoattack": AA}))
    assert result.status == "passed", result.message
    assert "AA 37.50 ≤ pgd20 50.00 (Linf ε = 8/255)" in result.message
    assert result.values["robust_but_misclassified"] == {"pgd20": 0, "autoattack": 0}


def test_autoattack_above_pgd_at_the_same_threat_model_is_flagged():
    result = check_ordering(inputs({"clean": 75.0, "pgd20": 37.5, "autoattack": 50.0}))
    assert result.status == "flagged"
    assert "AA 50.00 > pgd20 37.50 (Linf ε = 8/255)" in result.message
    assert result.values["aa_above_pgd"] == ["autoattack > pgd20"]


def test_autoattack_and_pgd_at_different_radii_are_not_compared():
    metrics = {"pgd": ad.build("metric", "pgd", eps="16/255"), "aa": ad.build("metric", "autoattack")}
    result = check_ordering(inputs({"clean": 75.0, "pgd20": 20.0, "autoattack": 40.0}, metrics=metrics))
    assert result.status == "passed", result.message


def test_a_robust_accuracy_above_clean_is_flagged():
    result = check_ordering(inputs({"clean": 40.0, "pgd20": 50.0, "autoattack": 30.0}))
    assert result.status == "flagged"
    assert "pgd20 (Linf ε = 8/255) 50.00 > clean 40.00" in result.message
    assert result.values["above_clean"] == ["pgd20"]


def test_an_image_robust_but_misclassified_clean_is_counted_and_flagged():
    # aggregates are in order (PGD 50 ≤ clean 75), but image 6 is "robust" and misclassified
    pgd = flags(1, 1, 1, 0, 0, 0, 1, 0)
    result = check_ordering(inputs({"clean": 75.0, "pgd20": 50.0}, {"clean": CLEAN, "pgd20": pgd},
                                   metrics={"pgd": ad.build("metric", "pgd")}))
    assert result.status == "flagged"
    assert "1 image(s) robust under pgd20 but misclassified clean" in result.message
    assert result.values["robust_but_misclassified"] == {"pgd20": 1}


def test_accuracy_rising_with_eps_is_flagged():
    curve = [{"eps": 8 / 255, "pgd20": 40.0, "autoattack": 30.0}, {"eps": 16 / 255, "pgd20": 45.0,
                                                                     "autoattack": 20.0}]
    result = check_ordering(inputs({"clean": 75.0, "eps_curve": curve}, metrics={}))
    assert result.status == "flagged"
    assert result.values["rising_with_eps"] == [
        "pgd accuracy rises with ε: eps_curve@0.0313725/pgd20 40.00 at Linf ε = 8/255 < "
        "eps_curve@0.0627451/pgd20 45.00 at Linf ε = 16/255"]


@pytest.mark.parametrize(("values", "reason"), [
    ({"pgd20": 50.0}, "no clean accuracy"),
    ({"clean": 75.0, "gd": 0.3}, "no robust accuracy"),
])
def test_not_run_says_why(values, reason):
    result = check_ordering(inputs(values))
    assert result.status == "not run" and result.message.startswith(f"not run: {reason}")


def test_autoattack_on_a_prefix_is_compared_with_pgd_and_clean_on_the_same_images():
    metrics = {"pgd": ad.build("metric", "pgd"), "aa": ad.build("metric", "autoattack", limit=4)}
    # the first 4 images: clean 100 %, PGD 100 %; AA 75 % there is below both, though above PGD's 50 % overall
    result = check_ordering(inputs({"clean": 75.0, "pgd20": 50.0, "autoattack": 75.0, "autoattack_n": 4},
                                   {"clean": CLEAN, "pgd20": PGD}, metrics=metrics))
    assert result.status == "passed", result.message
    assert "AA 75.00 ≤ pgd20 100.00 on the first 4 images (Linf ε = 8/255)" in result.message
    # ... and above them there is flagged
    pgd = flags(1, 1, 0, 0, 1, 1, 0, 0)  # 50 % on the first 4
    result = check_ordering(inputs({"clean": 75.0, "pgd20": 50.0, "autoattack": 75.0, "autoattack_n": 4},
                                   {"clean": CLEAN, "pgd20": pgd}, metrics=metrics))
    assert result.status == "flagged"
    assert "AA 75.00 > pgd20 50.00 on the first 4 images" in result.message
    assert result.values["aa_above_pgd"] == ["autoattack > pgd20"]
    clean = flags(1, 1, 0, 0, 1, 1, 1, 1)  # 50 % on the first 4
    result = check_ordering(inputs({"clean": 75.0, "pgd20": 25.0, "autoattack": 75.0, "autoattack_n": 4},
                                   {"clean": clean}, metrics=metrics))
    assert "autoattack (Linf ε = 8/255) 75.00 > clean 50.00 on the first 4 images" in result.message
    assert "AA (first 4 images) not compared with pgd20: no per-image pgd20 record" in check_ordering(
        inputs({"clean": 75.0, "pgd20": 50.0, "autoattack": 25.0, "autoattack_n": 4}, {"clean": CLEAN},
               metrics=metrics)).message
