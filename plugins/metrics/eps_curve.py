"""Robust accuracy against growing ε (the paper's Fig. 5): PGD and AutoAttack per radius."""

from __future__ import annotations

import logging
from typing import Any

from attrs import define, field

from advdistill.components import build
from advdistill.config import as_float, as_float_tuple, build_config, each, in_range, integer, positive_or_none
from advdistill.errors import RecipeError
from advdistill.interfaces import Metric
from advdistill_plugins.metrics.autoattack import AutoAttackConfig, AutoAttackMetric

log = logging.getLogger(__name__)


def _autoattack_settings(value: Any) -> dict[str, Any] | None:
    """true → standard AutoAttack, false → none, a table → those AutoAttack settings (checked)."""
    if value is True:
        return {}
    if value is False or value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"expected true, false or a table of autoattack settings, got {value!r}")
    fixed = {"eps", "key"} & set(value)
    if fixed:
        names = ", ".join(sorted(fixed))
        raise ValueError(f"autoattack: {names} are set per point of the curve; remove them")
    try:
        build_config(AutoAttackConfig, value, where="autoattack")
    except RecipeError as exc:
        raise ValueError(str(exc)) from None
    return dict(value)


@define(frozen=True, kw_only=True)
class EpsCurveConfig:
    #: the radii (Linf); the paper's Fig. 5: 8, 10, 12, 14, 16 /255
    eps: tuple[float, ...] = field(
        default=tuple(k / 255 for k in (8, 10, 12, 14, 16)), converter=as_float_tuple,
        validator=each(in_range(0.0, low_open=True)),
    )
    #: PGD steps at every radius
    steps: int = field(default=20, validator=integer(1))
    #: the PGD step at every radius (the paper's PGD-20 step)
    step_size: float = field(default=2 / 255, converter=as_float, validator=positive_or_none)
    #: PGD restarts (an image counts as robust only if it survives every one)
    restarts: int = field(default=1, validator=integer(1))
    #: true: standard AutoAttack at each radius; false: PGD only; a table: AutoAttack settings
    #: (version, attacks, n_iter, ...) as for the `autoattack` metric
    autoattack: dict[str, Any] | None = field(default=True, converter=_autoattack_settings)

    def __attrs_post_init__(self) -> None:
        if not self.eps:
            raise ValueError("'eps' needs at least one radius")


def record_prefix(eps: float) -> str:
    """Where a point's per-image flags are recorded: ``eps_curve@<eps>/`` + ``pgd20`` / ``autoattack``."""
    return f"eps_curve@{eps:.6g}/"


class EpsCurve(Metric):
    """PGD-20 and AutoAttack accuracy (%) at each ε of a list (Linf; default 8…16/255) → key
    ``eps_curve``: a list of ``{"eps", "pgd20", "autoattack"}`` (autoattack null when off).
    Per image: recorded as ``eps_curve@<eps>/pgd20`` and ``eps_curve@<eps>/autoattack``
    (ε in pixel units, 6 significant digits)."""

    mean_over_images = True

    Config = EpsCurveConfig

    def evaluate(self, ctx):
        cfg = self.config
        curve = []
        for eps in cfg.eps:
            at_eps = ctx.scoped(record_prefix(eps))
            pgd = build("metric", "pgd", eps=eps, step_size=cfg.step_size, steps=cfg.steps,
                        restarts=cfg.restarts, key=f"pgd{cfg.steps}")
            point: dict[str, Any] = {"eps": eps, **pgd.evaluate(at_eps)}
            if cfg.autoattack is not None:
                aa = AutoAttackMetric(AutoAttackConfig(**{**cfg.autoattack, "eps": eps, "key": "autoattack"}))
                point.update(aa.evaluate(at_eps))
            else:
                point["autoattack"] = None
            log.info("eps_curve: eps = %.4f (%g/255): %s", eps, eps * 255, point)
            curve.append(point)
        return {"eps_curve": curve}
