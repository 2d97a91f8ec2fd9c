"""The threat model a robust number was measured at: its norm and radius ε, and where they came from.

A robust metric that is not given its own ``eps`` (and ``norm``) takes the run's threat model:
the norm and ε of the recipe's ``[attack]`` (the perturbation the model was trained against),
or, for a recipe without an attack that has them, the IGDM paper's CIFAR radii (Linf 8/255,
L2 128/255, L1 12). Every robust report key records the result (report.json ``metric_info``),
so that a number never travels without its ε.
"""

from __future__ import annotations

import math
from typing import Any

from attrs import define

NORMS = ("linf", "l2", "l1")
#: the IGDM paper's radii (Tables 2 and 6, CIFAR): Linf 8/255, L2 128/255, L1 12
PAPER_EPS = {"linf": 8 / 255, "l2": 128 / 255, "l1": 12.0}

#: where a threat model came from
FROM_METRIC, FROM_ATTACK, FROM_DEFAULT = "metric", "[attack]", "default"


@define(frozen=True)
class ThreatModel:
    """A norm ball: ``norm`` ("linf", "l2", "l1") and radius ``eps`` in pixel units; ``source``
    says where they came from: the metric's own settings, the recipe's ``[attack]``, or the
    paper's default radius."""

    norm: str
    eps: float
    source: str = FROM_DEFAULT

    def same(self, other: ThreatModel | None) -> bool:
        """The same ball (norm, and ε up to rounding), wherever each came from."""
        return other is not None and same_threat(self.norm, self.eps, other.norm, other.eps)

    def scaled(self, factor: float) -> ThreatModel:
        return ThreatModel(self.norm, self.eps * factor, self.source)

    def to_json(self) -> dict[str, Any]:
        return {"norm": self.norm, "eps": self.eps, "source": self.source}

    def __str__(self) -> str:
        return threat_text(self.norm, self.eps)


def same_threat(norm_a: str | None, eps_a: float | None, norm_b: str | None, eps_b: float | None) -> bool:
    return (norm_a is not None and norm_a == norm_b and eps_a is not None and eps_b is not None
            and math.isclose(eps_a, eps_b, rel_tol=1e-6))


def run_threat(recipe: Any) -> ThreatModel | None:
    """The threat model of a run: the norm and ε of its ``[attack]``, or None (no attack, or one
    without a positive ``eps``)."""
    config = getattr(getattr(recipe, "attack", None), "config", None)
    eps = getattr(config, "eps", None)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or eps <= 0:
        return None
    norm = getattr(config, "norm", "linf")
    return ThreatModel(norm if norm in NORMS else "linf", float(eps), FROM_ATTACK)


def resolve_threat(recipe: Any, *, norm: str | None = None, eps: float | None = None) -> ThreatModel:
    """The threat model of a metric with (optional) own ``norm`` and ``eps``.

    ``norm`` None: the run's norm (else Linf). ``eps`` None: the run's ε when the norm is the
    run's, else the paper's radius for that norm (:data:`PAPER_EPS`).
    """
    run = run_threat(recipe)
    norm = norm or (run.norm if run is not None else "linf")
    if eps is not None:
        return ThreatModel(norm, float(eps), FROM_METRIC)
    if run is not None and run.norm == norm:
        return run
    return ThreatModel(norm, PAPER_EPS[norm], FROM_DEFAULT)


def threat_text(norm: str | None, eps: float | None) -> str:
    """``Linf ε = 8/255`` (fractions of 255 when exact), ``L2 ε = 0.5``."""
    name = {"linf": "Linf", "l2": "L2", "l1": "L1"}.get(norm or "", str(norm))
    if eps is None:
        return name
    return f"{name} ε = {eps_text(eps)}"


def eps_text(eps: float) -> str:
    """``8/255`` rather than 0.0313725 (when ε·255 is a whole number), ``0.2`` rather than 51/255."""
    scaled, plain = eps * 255, f"{eps:g}"
    fraction = 0 < eps < 1 and abs(scaled - round(scaled)) < 1e-6 and len(plain) > 5
    return f"{round(scaled)}/255" if fraction else plain
