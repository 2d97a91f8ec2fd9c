"""What every sanity check shares: its inputs, its result, the robust results of the evaluation,
and the paired rule that decides whether one attack lowered accuracy beyond seed noise."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import define, field
from torch import Tensor

from advdistill.evaluation.context import EvalContext
from advdistill.evaluation.threat import same_threat, threat_text
from advdistill.recipe.schema import ChecksConfig
from advdistill.stats import binomial_tail

PASSED, FLAGGED, NOT_RUN = "passed", "flagged", "not run"


@define(frozen=True)
class CheckResult:
    """The outcome of one check: its status, one line with its numbers, and those numbers."""

    status: str  # PASSED | FLAGGED | NOT_RUN
    message: str
    values: dict[str, Any] = field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, **self.values}


def passed(message: str, **values: Any) -> CheckResult:
    return CheckResult(PASSED, message, values)


def flagged(message: str, **values: Any) -> CheckResult:
    return CheckResult(FLAGGED, message, values)


def not_run(reason: str, **values: Any) -> CheckResult:
    return CheckResult(NOT_RUN, f"not run: {reason}", values)


@define(frozen=True)
class Robust:
    """One robust accuracy of the evaluation: which attack, which threat model, its per-image flags."""

    key: str  # the report key (and per-example record key)
    attack: str  # "pgd" | "autoattack" | "other"
    norm: str | None
    eps: float | None
    accuracy: float  # percent, over every evaluated image (or the first `n`)
    flags: Tensor | None = None  # bool (N,): robust, over every evaluated image
    metric: Any = None  # the metric object, when the result is a metric's own report key
    #: the attack's settings as the metric declared them (for "pgd": the `pgd` attack's parameters)
    settings: Mapping[str, Any] | None = None
    n: int | None = None  # the accuracy is over the first n evaluated images only (AutoAttack's `limit`)

    def same_threat(self, norm: str | None, eps: float | None) -> bool:
        return same_threat(self.norm, self.eps, norm, eps)

    def describe(self) -> str:
        where = f" ({threat_text(self.norm, self.eps)})" if self.norm is not None and self.eps is not None else ""
        return f"{self.key}{where}"


@define(kw_only=True)
class CheckInputs:
    """What the checks read: the evaluation's context (model, every evaluated image, teacher), its
    metrics (objects), their values and per-image records, and the settings."""

    ctx: EvalContext
    metrics: Mapping[str, Any]
    values: Mapping[str, Any]
    records: Mapping[str, Tensor]
    config: ChecksConfig
    robust: list[Robust] = field(factory=list)
    #: what the metrics declared about their robust keys (ctx.describe): key → {"norm", "eps", "attack", ...}
    threats: Mapping[str, Mapping[str, Any]] = field(factory=dict)

    @property
    def n(self) -> int:
        """The size of the subset the attack checks use: the first ``config.n`` evaluated images."""
        return min(self.config.n, self.ctx.n_examples)

    def subset(self) -> EvalContext:
        """The evaluation's context on the first :attr:`n` images (records go nowhere)."""
        return attrs.evolve(self.ctx, images=self.ctx.images[: self.n], labels=self.ctx.labels[: self.n],
                            records={}, threats={}, record_prefix="", label="checks")

    def white_box(self, attack: str | None = None) -> list[Robust]:
        """Robust results of white-box attacks (PGD, AutoAttack) that have per-image flags."""
        kinds = ("pgd", "autoattack") if attack is None else (attack,)
        return [r for r in self.robust if r.attack in kinds and r.flags is not None]


@define(frozen=True)
class Drop:
    """Two attacks on the same n images: how much lower the second one's accuracy is, and whether
    that is more than seed noise (one-sided exact sign test on the images they disagree on)."""

    n: int
    reference: int  # images robust under the reference attack
    other: int  # images robust under the other attack
    #: robust under the reference, broken by the other
    only_reference: int
    #: broken by the reference, robust under the other
    only_other: int

    @classmethod
    def of(cls, reference: Tensor, other: Tensor) -> Drop:
        reference, other = reference.bool(), other.bool()
        return cls(n=int(reference.numel()), reference=int(reference.sum()), other=int(other.sum()),
                   only_reference=int((reference & ~other).sum()), only_other=int((~reference & other).sum()))

    @property
    def points(self) -> float:
        """Reference accuracy minus the other's, in percentage points."""
        return 100.0 * (self.reference - self.other) / self.n

    @property
    def p_value(self) -> float:
        """P(at least ``only_reference`` of the disagreements go the other attack's way | a fair coin)."""
        return binomial_tail(self.only_other, self.only_reference + self.only_other)

    def is_flagged(self, margin: float, alpha: float) -> bool:
        """More than ``margin`` points lower and beyond noise (p < ``alpha``)."""
        return self.points > margin and self.p_value < alpha

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "reference_accuracy": 100.0 * self.reference / self.n,
                "accuracy": 100.0 * self.other / self.n, "drop": self.points,
                "only_reference": self.only_reference, "only_other": self.only_other, "p_value": self.p_value}


def smallest_flagged_drop(n: int, margin: float, alpha: float) -> float:
    """The smallest drop (points) that can be flagged on n images: above ``margin`` and, when the
    attacks disagree only one way, k images with 2^-k < alpha."""
    by_noise = math.floor(math.log2(1.0 / alpha)) + 1
    by_margin = math.floor(margin * n / 100.0 + 1e-9) + 1
    return 100.0 * max(by_noise, by_margin) / n


def robust_results(
    metrics: Mapping[str, Any], values: Mapping[str, Any], records: Mapping[str, Tensor],
    threats: Mapping[str, Mapping[str, Any]],
) -> list[Robust]:
    """Every robust accuracy of an evaluation: each key a metric described with its threat model
    (``ctx.describe``: report keys of PGD and AutoAttack metrics, the points of an ``eps_curve``,
    ...), with the norm, ε and attack settings it declared, and any other per-image record."""
    found: dict[str, Robust] = {}
    by_key = {getattr(metric, "key", None): metric for metric in metrics.values()}
    for key, threat in threats.items():
        flags = records.get(key)
        value = values.get(key, _curve_point(values, key))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            accuracy = float(value)
        elif flags is not None and flags.numel():
            accuracy = 100.0 * int(flags.sum()) / flags.numel()
        else:
            continue
        attack = threat.get("attack")
        metric = by_key.get(key)
        limited = metric is not None and getattr(getattr(metric, "config", None), "limit", None) is not None
        n = values.get(f"{key}_n") if limited else None
        found[key] = Robust(key, attack if attack in ("pgd", "autoattack") else "other", threat["norm"],
                            float(threat["eps"]), accuracy, flags, metric, threat.get("settings"),
                            int(n) if isinstance(n, int) else None)
    for key, flags in records.items():
        if key != "clean" and key not in found:
            found[key] = Robust(key, "other", None, None, 100.0 * int(flags.sum()) / flags.numel(), flags)
    return list(found.values())


def _curve_point(values: Mapping[str, Any], key: str) -> Any:
    """The accuracy of a curve point's record key ``<curve>@<eps>/<name>`` in ``values[<curve>]``."""
    head, at, rest = key.partition("@")
    eps, slash, name = rest.partition("/")
    if not at or not slash or not isinstance(values.get(head), list):
        return None
    for point in values[head]:
        if isinstance(point, Mapping) and isinstance(point.get("eps"), (int, float)) and f"{point['eps']:.6g}" == eps:
            return point.get(name)
    return None


def pct(value: float) -> str:
    """A percentage with two decimals."""
    return f"{value:.2f} %"
