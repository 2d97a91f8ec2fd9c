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
    metric: Any = None  # the metric object, when the result is a metric's own key
    n: int | None = None  # the accuracy is over the first n evaluated images only (AutoAttack's `limit`)

    def same_threat(self, norm: str | None, eps: float | None) -> bool:
        return (self.norm is not None and self.norm == norm and self.eps is not None and eps is not None
                and math.isclose(self.eps, eps, rel_tol=1e-6))

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

    @property
    def n(self) -> int:
        """The size of the subset the attack checks use: the first ``config.n`` evaluated images."""
        return min(self.config.n, self.ctx.n_examples)

    def subset(self) -> EvalContext:
        """The evaluation's context on the first :attr:`n` images (records go nowhere)."""
        return attrs.evolve(self.ctx, images=self.ctx.images[: self.n], labels=self.ctx.labels[: self.n],
                            records={}, record_prefix="", label="checks")

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
    metrics: Mapping[str, Any], values: Mapping[str, Any], records: Mapping[str, Tensor]
) -> list[Robust]:
    """Every robust accuracy of an evaluation: the report keys of PGD and AutoAttack metrics (with
    their norm and ε), the points of an ``eps_curve`` (Linf), and any other per-image record."""
    from advdistill.plugins import get_registry

    registry = get_registry()
    classes = {}
    for attack in ("pgd", "autoattack"):
        if ("metric", attack) in registry:
            classes[attack] = registry.get("metric", attack)
    found: dict[str, Robust] = {}
    for metric in metrics.values():
        attack = next((name for name, cls in classes.items() if isinstance(metric, cls)), None)
        key = getattr(metric, "key", None)
        if attack is None or not isinstance(values.get(key), (int, float)):
            continue
        cfg = metric.config
        n = values.get(f"{key}_n") if getattr(cfg, "limit", None) is not None else None
        found[key] = Robust(key, attack, cfg.norm, float(cfg.radius), float(values[key]), records.get(key), metric,
                            int(n) if isinstance(n, int) else None)
    for point in values.get("eps_curve") or []:
        if not isinstance(point, Mapping) or "eps" not in point:
            continue
        for name, accuracy in point.items():
            if name == "eps" or not isinstance(accuracy, (int, float)):
                continue
            key = f"eps_curve@{point['eps']:.6g}/{name}"  # the documented record name of a curve point
            attack = "autoattack" if name == "autoattack" else "pgd" if name.startswith("pgd") else "other"
            found[key] = Robust(key, attack, "linf", float(point["eps"]), float(accuracy), records.get(key))
    for key, flags in records.items():
        if key != "clean" and key not in found:
            found[key] = Robust(key, "other", None, None, 100.0 * int(flags.sum()) / flags.numel(), flags)
    return list(found.values())


def threat_text(norm: str | None, eps: float | None) -> str:
    """``Linf ε = 8/255`` (fractions of 255 when exact), ``L2 ε = 0.5``."""
    name = {"linf": "Linf", "l2": "L2", "l1": "L1"}.get(norm or "", str(norm))
    if eps is None:
        return name
    scaled, plain = eps * 255, f"{eps:g}"
    # 8/255 rather than 0.0313725; 0.2 rather than 51/255
    fraction = 0 < eps < 1 and abs(scaled - round(scaled)) < 1e-6 and len(plain) > 5
    shown = f"{round(scaled)}/255" if fraction else plain
    return f"{name} ε = {shown}"


def pct(value: float) -> str:
    """A percentage with two decimals."""
    return f"{value:.2f} %"
