"""Statistics for comparing runs: the exact McNemar test on paired per-image outcomes.

Pure Python (exact integer arithmetic), no torch: ``advdistill compare`` and any other
command that pairs two evaluations image by image can use it.
"""

from __future__ import annotations

from attrs import define


def binomial_tail(k: int, n: int) -> float:
    """P(X ≤ k) for X ~ Binomial(n, 1/2), exactly (the sum of C(n, i) over 2^n, then one rounding)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    term, total = 1, 1  # C(n, 0)
    for i in range(k):
        term = term * (n - i) // (i + 1)  # C(n, i + 1), exact
        total += term
    return total / 2**n  # int / int: correctly rounded even for huge n


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    ``only_a``: images A gets right and B wrong; ``only_b``: the reverse. Under the null
    hypothesis (both models equally accurate on these images) each discordant image is a fair
    coin: p = min(1, 2·P(X ≤ min(only_a, only_b))), X ~ Binomial(only_a + only_b, 1/2);
    p = 1 without discordant images. Exact for every count (no chi-square approximation).
    """
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_a} and {only_b}")
    n = only_a + only_b
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * binomial_tail(min(only_a, only_b), n))


@define(frozen=True)
class PairedOutcome:
    """Two models on the same n images: how many each got right, and where they disagree."""

    n: int
    correct_a: int
    correct_b: int
    #: right for A, wrong for B
    only_a: int
    #: right for B, wrong for A
    only_b: int

    @property
    def accuracy_a(self) -> float:
        """Accuracy of A in percent."""
        return 100.0 * self.correct_a / self.n if self.n else float("nan")

    @property
    def accuracy_b(self) -> float:
        """Accuracy of B in percent."""
        return 100.0 * self.correct_b / self.n if self.n else float("nan")

    @property
    def difference(self) -> float:
        """B − A in percentage points (= 100·(only_b − only_a)/n)."""
        return 100.0 * (self.only_b - self.only_a) / self.n if self.n else float("nan")

    @property
    def p_value(self) -> float:
        """The exact McNemar p-value (:func:`mcnemar_exact`)."""
        return mcnemar_exact(self.only_a, self.only_b)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n, "accuracy_a": self.accuracy_a, "accuracy_b": self.accuracy_b,
            "difference": self.difference, "only_a": self.only_a, "only_b": self.only_b,
            "p_value": self.p_value,
        }
