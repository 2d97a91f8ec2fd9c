"""The statistics against tabulated values, hand computations on fixed numbers and SciPy: Student t
quantiles, means with t intervals, paired differences, McNemar's test (exact and chi-square)."""

import math
from fractions import Fraction

import pytest

from advdistill.stats import (
    PairedOutcome,
    binomial_tail,
    chi2_sf_1df,
    mcnemar,
    mcnemar_exact,
    mean_ci,
    paired_differences,
    regularized_incomplete_beta,
    t_cdf,
    t_quantile,
)


@pytest.mark.parametrize(("only_a", "only_b", "expected"), [
    (0, 0, 1.0),                          # no discordant image: nothing to test
    (0, 5, 2 / 32),                       # 2·P(X ≤ 0), X ~ Bin(5, 1/2) = 2·1/32
    (1, 4, 2 * (1 + 5) / 32),             # 2·(C(5,0) + C(5,1))/2^5 = 0.375
    (8, 2, 2 * (1 + 10 + 45) / 1024),     # symmetric in the two counts: 0.109375
    (3, 3, 1.0),                          # 2·P(X ≤ 3) = 2·42/64 > 1 → 1
    (2, 3, 1.0),                          # 2·P(X ≤ 2) = 2·16/32 = 1
])
def test_hand_computed_values(only_a, only_b, expected):
    assert mcnemar_exact(only_a, only_b) == pytest.approx(expected, rel=1e-15)


def test_binomial_tail_edges_and_a_direct_sum():
    assert binomial_tail(-1, 4) == 0.0 and binomial_tail(4, 4) == 1.0 and binomial_tail(0, 0) == 1.0
    assert binomial_tail(3, 10) == pytest.approx(sum(math.comb(10, i) for i in range(4)) / 1024, rel=1e-15)


def test_against_scipy_binomtest_including_large_counts():
    stats = pytest.importorskip("scipy.stats")
    for only_a, only_b in [(1, 9), (12, 30), (140, 161), (480, 560), (2500, 2650), (0, 1200)]:
        expected = stats.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
        assert mcnemar_exact(only_a, only_b) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_negative_counts_are_refused():
    with pytest.raises(ValueError, match=">= 0"):
        mcnemar_exact(-1, 3)


def test_paired_outcome_accuracies_and_difference():
    outcome = PairedOutcome(n=200, correct_a=120, correct_b=130, only_a=5, only_b=15)
    assert (outcome.accuracy_a, outcome.accuracy_b, outcome.difference) == (60.0, 65.0, 5.0)
    assert outcome.p_value == mcnemar_exact(5, 15)
    assert outcome.as_dict()["difference"] == 5.0 and outcome.as_dict()["only_b"] == 15


# Student t quantiles from a printed table (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), 3 decimals there
TABLE = {
    (0.975, 1): 12.706, (0.975, 2): 4.303, (0.975, 3): 3.182, (0.975, 4): 2.776, (0.975, 5): 2.571,
    (0.975, 9): 2.262, (0.975, 10): 2.228, (0.975, 29): 2.045, (0.975, 100): 1.984,
    (0.95, 1): 6.314, (0.95, 10): 1.812, (0.995, 5): 4.032, (0.9, 3): 1.638,
}


@pytest.mark.parametrize(("p", "df"), TABLE)
def test_t_quantile_matches_the_table(p, df):
    assert t_quantile(p, df) == pytest.approx(TABLE[p, df], abs=6e-4)
    assert t_quantile(1 - p, df) == pytest.approx(-TABLE[p, df], abs=6e-4)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.999])
def test_t_quantile_matches_the_closed_forms_for_one_and_two_degrees_of_freedom(p):
    # df = 1 is the Cauchy distribution; df = 2 has t = (2p − 1) / sqrt(2 p (1 − p))
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)


def test_t_cdf_and_large_df_tend_to_the_normal():
    assert t_cdf(0.0, 7) == 0.5
    assert t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-12)  # 1/2 + atan(1)/π
    assert t_quantile(0.975, 1e6) == pytest.approx(1.959964, abs=1e-5)


def test_incomplete_beta_special_cases():
    for x in (0.0, 0.1, 0.5, 0.93, 1.0):
        assert regularized_incomplete_beta(1, 1, x) == pytest.approx(x, abs=1e-14)
        assert regularized_incomplete_beta(3, 1, x) == pytest.approx(x**3, abs=1e-14)
        assert regularized_incomplete_beta(1, 4, x) == pytest.approx(1 - (1 - x) ** 4, abs=1e-14)
    assert regularized_incomplete_beta(2.5, 2.5, 0.5) == pytest.approx(0.5, abs=1e-14)
    with pytest.raises(ValueError):
        regularized_incomplete_beta(1, 1, 1.5)


def test_mean_ci_by_hand():
    s = mean_ci([1, 2, 3, 4])
    # mean 2.5, s = sqrt(5/3), half width t_{.975,3} · s / 2 with t_{.975,3} = 3.182446
    assert s.n == 4 and s.mean == 2.5 and s.sd == pytest.approx(math.sqrt(5 / 3))
    assert s.half_width == pytest.approx(3.182446 * math.sqrt(5 / 3) / 2, abs=1e-5)
    assert s.half_width == pytest.approx(2.05426, abs=1e-5)
    assert (s.low, s.high) == pytest.approx((2.5 - 2.05426, 2.5 + 2.05426), abs=1e-5)


def test_mean_ci_with_one_or_no_value():
    one = mean_ci([63.2])
    assert one.n == 1 and one.mean == 63.2 and one.half_width is None and one.low is None
    none = mean_ci([])
    assert none.n == 0 and none.mean is None
    assert mean_ci([5, 5, 5]).half_width == 0.0


def test_paired_differences_by_hand():
    first = {0: 60.0, 1: 62.0, 2: 61.0, 3: 59.0}
    second = {0: 61.0, 1: 64.0, 2: 61.5, 7: 70.0}
    paired = paired_differences(first, second)
    assert paired.differences == {0: 1.0, 1: 2.0, 2: 0.5}
    assert set(paired.unpaired) == {3, 7}
    # d = 1, 2, 0.5: mean 7/6, s² = (1/36 + 25/36 + 16/36) / 2 = 7/12, t_{.975,2} = 4.302653
    s = paired.summary
    assert s.mean == pytest.approx(7 / 6)
    assert s.sd == pytest.approx(math.sqrt(7 / 12))
    assert s.half_width == pytest.approx(4.302653 * math.sqrt(7 / 12) / math.sqrt(3), abs=1e-5)


def test_mcnemar_below_25_discordant_pairs_is_the_exact_test_by_hand():
    # b = 2, c = 8: P(X <= 2 | n = 10) = (1 + 10 + 45) / 1024; two-sided: twice that
    result = mcnemar(2, 8)
    assert result.method == "exact" and result.statistic is None
    assert result.p_value == pytest.approx(2 * 56 / 1024, abs=1e-15)
    assert mcnemar(8, 2).p_value == result.p_value
    assert mcnemar(3, 3).p_value == 1.0 and mcnemar(0, 0).p_value == 1.0
    # b + c = 24 is still exact: 2 · P(X <= 5 | n = 24) computed with fractions
    tail = sum(Fraction(math.comb(24, k), 2**24) for k in range(6))
    assert mcnemar(5, 19).p_value == pytest.approx(float(2 * tail), rel=1e-12)
    assert mcnemar(0, 1).p_value == 1.0


def test_mcnemar_chi_square_with_continuity_correction_by_hand():
    # b = 10, c = 30: (|10 − 30| − 1)² / 40 = 9.025; p = P(χ²₁ >= 9.025) = 0.0026631
    result = mcnemar(10, 30)
    assert result.method == "chi2_cc" and result.statistic == pytest.approx(9.025)
    assert result.p_value == pytest.approx(0.0026631, abs=1e-6)
    # the same p from the normal distribution by numeric integration: 2 · (1 − Φ(√9.025))
    z = math.sqrt(9.025)
    steps, upper = 20000, 12.0
    h = (upper - z) / steps
    density = [math.exp(-((z + i * h) ** 2) / 2) / math.sqrt(2 * math.pi) for i in range(steps + 1)]
    simpson = h / 3 * (density[0] + density[-1] + 4 * sum(density[1:-1:2]) + 2 * sum(density[2:-1:2]))
    assert result.p_value == pytest.approx(2 * simpson, rel=1e-7)
    assert mcnemar(12, 13).method == "chi2_cc"  # b + c = 25: the approximation
    assert chi2_sf_1df(0.0) == 1.0


def test_mcnemar_refuses_negative_counts():
    with pytest.raises(ValueError):
        mcnemar(-1, 3)
