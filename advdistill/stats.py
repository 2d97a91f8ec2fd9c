"""Statistics for comparing runs: Student t intervals over seeds, paired differences, McNemar's test.

Pure Python (``math`` and exact integer arithmetic, no torch, no SciPy): the Student t quantile
comes from the regularized incomplete beta function (a continued fraction) and bisection.
``advdistill compare`` and the evaluation sanity checks use the exact McNemar test on paired
per-image outcomes; ``advdistill study`` the rest. docs/studies.md gives every definition.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping

from attrs import define

#: McNemar: below this many discordant pairs the exact binomial test is used, above it the
#: chi-square approximation with continuity correction (the usual rule of thumb: b + c < 25)
EXACT_BELOW = 25


# -- the Student t distribution ----------------------------------------------------------------

def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz; Numerical Recipes §6.4)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        even = m * (b - m) * x / ((qam + m2) * (a + m2))
        odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        for numerator in (even, odd):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            return h
    raise ArithmeticError(f"incomplete beta: no convergence for a={a}, b={b}, x={x}")


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) = B(x; a, b) / B(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0 and 0.0 <= x <= 1.0):
        raise ValueError(f"incomplete beta needs a, b > 0 and 0 <= x <= 1, got a={a}, b={b}, x={x}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    # the fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (df > 0)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (Student's t, ``df`` > 0 degrees of freedom), by bisection."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile needs 0 < p < 1, got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


# -- means and confidence intervals --------------------------------------------------------------

@define(frozen=True)
class Summary:
    """n values: their mean, sample standard deviation and the Student t confidence interval.

    ``half_width`` is None when n < 2 (one seed gives no interval); ``mean`` is None when n = 0.
    """

    n: int
    mean: float | None
    sd: float | None
    half_width: float | None
    level: float = 0.95

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width

    def as_dict(self) -> dict[str, float | int | None]:
        return {"n": self.n, "mean": self.mean, "sd": self.sd, "half_width": self.half_width,
                "ci_low": self.low, "ci_high": self.high, "level": self.level}


def mean_ci(values: Iterable[float], level: float = 0.95) -> Summary:
    """Mean ± t_{(1+level)/2, n-1} · s / √n, with s the sample standard deviation (n − 1)."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return Summary(0, None, None, None, level)
    mean = math.fsum(xs) / n
    if n == 1:
        return Summary(1, mean, None, None, level)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile((1.0 + level) / 2.0, n - 1) * sd / math.sqrt(n)
    return Summary(n, mean, sd, half, level)


@define(frozen=True)
class Paired:
    """Per-key differences second − first over the keys (seeds) both have, and their summary."""

    differences: dict[Hashable, float]
    summary: Summary
    #: keys present on one side only (left out of the differences)
    unpaired: tuple[Hashable, ...]


def paired_differences(first: Mapping[Hashable, float], second: Mapping[Hashable, float],
                       level: float = 0.95) -> Paired:
    """d_k = second[k] − first[k] for every key k in both; mean ± t CI of the d_k."""
    keys = [k for k in first if k in second]
    diffs = {k: float(second[k]) - float(first[k]) for k in keys}
    unpaired = tuple(k for k in (*first, *second) if k not in diffs)
    return Paired(diffs, mean_ci(diffs.values(), level), tuple(dict.fromkeys(unpaired)))


# -- McNemar's test ----------------------------------------------------------------------------

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
class McNemar:
    """McNemar's test on paired binary outcomes.

    ``b``: first right, second wrong; ``c``: first wrong, second right. ``method`` is
    ``"exact"`` (two-sided binomial test of b ~ Bin(b + c, 1/2)) or ``"chi2_cc"`` (chi-square
    with 1 degree of freedom and continuity correction; ``statistic`` holds its value).
    """

    b: int
    c: int
    p_value: float
    method: str
    statistic: float | None = None

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {"b": self.b, "c": self.c, "p_value": self.p_value, "method": self.method,
                "statistic": self.statistic}


def chi2_sf_1df(x: float) -> float:
    """P(χ²₁ ≥ x) = erfc(√(x/2))."""
    return math.erfc(math.sqrt(max(x, 0.0) / 2.0))


def mcnemar(b: int, c: int, exact_below: int = EXACT_BELOW) -> McNemar:
    """McNemar's test: exact binomial when b + c < ``exact_below``, else chi-square
    (|b − c| − 1)² / (b + c) with continuity correction."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    if b + c < exact_below:
        return McNemar(b, c, mcnemar_exact(b, c), "exact")
    statistic = max(abs(b - c) - 1, 0) ** 2 / (b + c)
    return McNemar(b, c, chi2_sf_1df(statistic), "chi2_cc", statistic)


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
