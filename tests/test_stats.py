"""The exact McNemar test against hand-computed binomial tails and scipy's binomial test."""

import math

import pytest

from advdistill.stats import PairedOutcome, binomial_tail, mcnemar_exact


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
