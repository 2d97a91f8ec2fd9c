"""The paired rule (exact one-sided sign test + margin), the smallest flaggable drop, threat
texts, and how the robust results of an evaluation are found."""

import math

import pytest
import torch
from check_models import declared_threats

import advdistill as ad
from advdistill.evaluation.checks import CHECKS
from advdistill.evaluation.checks.base import Drop, robust_results, smallest_flagged_drop, threat_text
from advdistill.recipe.schema import CHECK_NAMES


def brute_force_p(only_reference: int, only_other: int) -> float:
    """P(X >= only_reference), X ~ Binomial(only_reference + only_other, 1/2), summed term by term."""
    n = only_reference + only_other
    return sum(math.comb(n, k) for k in range(only_reference, n + 1)) / 2**n


@pytest.mark.parametrize(("b", "c"), [(0, 0), (5, 0), (4, 0), (7, 3), (3, 7), (12, 12), (30, 9)])
def test_drop_counts_and_one_sided_p_value_by_hand(b, c):
    n = 100
    # b images only the reference calls robust, c only the other, 40 both, the rest neither
    reference = torch.tensor([1] * b + [0] * c + [1] * 40 + [0] * (n - b - c - 40), dtype=torch.bool)
    other = torch.tensor([0] * b + [1] * c + [1] * 40 + [0] * (n - b - c - 40), dtype=torch.bool)
    drop = Drop.of(reference, other)
    assert (drop.only_reference, drop.only_other) == (b, c)
    assert drop.points == pytest.approx(100.0 * (b - c) / n)
    assert drop.p_value == pytest.approx(brute_force_p(b, c), rel=1e-12)


def test_a_drop_is_flagged_only_above_the_margin_and_beyond_noise():
    def drop(b, c, n=100):
        return Drop(n=n, reference=50, other=50 - b + c, only_reference=b, only_other=c)

    assert drop(5, 0).is_flagged(margin=1.0, alpha=0.05)  # 5 points, p = 1/32
    assert not drop(4, 0).is_flagged(margin=1.0, alpha=0.05)  # p = 1/16: could be seed noise
    assert not drop(5, 0).is_flagged(margin=5.0, alpha=0.05)  # not more than the margin
    assert not drop(20, 14).is_flagged(margin=1.0, alpha=0.05)  # 6 points but p ≈ 0.2
    assert drop(40, 14).is_flagged(margin=1.0, alpha=0.05)
    assert not drop(0, 6).is_flagged(margin=0.0, alpha=0.5)  # the other attack is weaker


@pytest.mark.parametrize(("n", "margin", "alpha"), [(100, 1.0, 0.05), (200, 1.0, 0.05), (1000, 1.0, 0.05),
                                                    (100, 0.0, 0.01), (50, 10.0, 0.05)])
def test_smallest_flagged_drop_is_the_smallest_drop_the_rule_flags(n, margin, alpha):
    flaggable = [b for b in range(n + 1) if Drop(n, b, 0, b, 0).is_flagged(margin, alpha)]
    assert smallest_flagged_drop(n, margin, alpha) == pytest.approx(100.0 * min(flaggable) / n)


def test_threat_text():
    assert threat_text("linf", 8 / 255) == "Linf ε = 8/255"
    assert threat_text("linf", 0.2) == "Linf ε = 0.2"
    assert threat_text("l2", 0.5) == "L2 ε = 0.5"
    assert threat_text("linf", 1.0) == "Linf ε = 1"


def test_robust_results_know_each_attack_and_its_threat_model():
    metrics = {"pgd": ad.build("metric", "pgd", eps=0.2), "aa": ad.build("metric", "autoattack"),
               "l2": ad.build("metric", "pgd_l2"), "clean": ad.build("metric", "clean")}
    flags = torch.tensor([True, False, True, True])
    values = {"clean": 75.0, "pgd20": 50.0, "autoattack": 25.0, "pgd_l2": 50.0, "gd": 0.3,
              "eps_curve": [{"eps": 8 / 255, "pgd20": 50.0, "autoattack": None}]}
    records = {"clean": flags, "pgd20": flags, "transfer_vmi_fgsm": flags, "eps_curve@0.0313725/pgd20": flags,
               "square": flags}
    threats = declared_threats(metrics, values)
    threats["transfer_vmi_fgsm"] = {"norm": "linf", "eps": 16 / 255, "source": "default", "attack": "transfer"}
    found = {r.key: r for r in robust_results(metrics, values, records, threats)}
    assert set(found) == {"pgd20", "autoattack", "pgd_l2", "eps_curve@0.0313725/pgd20", "transfer_vmi_fgsm",
                          "square"}
    assert (found["pgd20"].attack, found["pgd20"].norm, found["pgd20"].eps) == ("pgd", "linf", 0.2)
    assert found["pgd20"].flags is flags and found["autoattack"].flags is None
    assert found["pgd20"].settings["steps"] == 20 and found["pgd20"].metric is metrics["pgd"]
    assert (found["autoattack"].attack, found["autoattack"].eps) == ("autoattack", pytest.approx(8 / 255))
    assert (found["pgd_l2"].norm, found["pgd_l2"].eps) == ("l2", pytest.approx(128 / 255))
    curve = found["eps_curve@0.0313725/pgd20"]
    assert (curve.attack, curve.norm, curve.flags is flags, curve.accuracy) == ("pgd", "linf", True, 50.0)
    transfer = found["transfer_vmi_fgsm"]  # described: its threat model; accuracy from its flags
    assert (transfer.attack, transfer.norm, transfer.eps, transfer.accuracy) == ("other", "linf", 16 / 255, 75.0)
    other = found["square"]  # recorded but not described
    assert (other.attack, other.norm, other.eps, other.accuracy) == ("other", None, None, 75.0)


def test_the_threat_model_is_the_declared_one_not_the_metric_settings():
    """One source: what the metric declared it attacked at (e.g. the run's [attack] ε), never re-derived."""
    metrics = {"pgd": ad.build("metric", "pgd")}  # no eps of its own: the run's threat model decides
    values, records = {"pgd20": 50.0}, {"pgd20": torch.tensor([True, False])}
    threats = {"pgd20": {"norm": "l2", "eps": 0.5, "source": "[attack]", "attack": "pgd"}}
    (found,) = robust_results(metrics, values, records, threats)
    assert (found.norm, found.eps) == ("l2", 0.5)


def test_every_check_has_its_name_in_the_recipe_schema():
    assert tuple(CHECKS) == CHECK_NAMES
