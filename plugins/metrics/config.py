"""The config classes of the evaluation metrics: what an ``[eval.metrics.<label>]`` table may set.

Kept apart from the components, without torch, so that resolving a recipe (``advdistill recipe
show/check``) validates a table without importing the component's module.
"""

from __future__ import annotations

from typing import Any

from attrs import define, field
from attrs.validators import instance_of

from advdistill.config import (
    as_float,
    build_config,
    component_table,
    each,
    in_range,
    integer,
    one_of,
    optional,
    optional_float,
    optional_float_tuple,
    positive_or_none,
    valid_seed,
)
from advdistill.errors import RecipeError, did_you_mean
from advdistill_plugins.attacks.config import VMIFGSMConfig


@define(frozen=True, kw_only=True)
class PGDMetricConfig:
    """PGD evaluation; ``norm``, ``eps`` and ``step_size`` left out follow the run's threat model."""

    #: the threat model's norm; None: the run's ([attack] norm, else "linf")
    norm: str | None = field(default=None, validator=optional(one_of("linf", "l2", "l1")))
    #: radius; None: the run's threat model ([attack] eps) when the norm is the run's, else the
    #: paper's radius for the norm: 8/255 (Linf), 128/255 (L2), 12 (L1)
    eps: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    #: None: ε/4 (2/255 at 8/255, the paper's PGD-20)
    step_size: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    #: ascent steps
    steps: int = field(default=20, validator=integer(1))
    #: an example counts as robust only if it survives every restart
    restarts: int = field(default=1, validator=integer(1))
    #: start from a uniform random point in the ball (else from x)
    random_start: bool = field(default=True, validator=instance_of(bool))
    #: report key; default pgd<steps> (the run's norm or Linf), pgd_l2 / pgd_l1 for another given norm
    key: str | None = field(default=None, validator=optional(instance_of(str)))


@define(frozen=True, kw_only=True)
class PGDL2MetricConfig(PGDMetricConfig):
    #: the unseen norm of Table 6
    norm: str | None = field(default="l2", validator=optional(one_of("linf", "l2", "l1")))


@define(frozen=True, kw_only=True)
class PGDL1MetricConfig(PGDMetricConfig):
    #: the unseen norm of Table 6
    norm: str | None = field(default="l1", validator=optional(one_of("linf", "l2", "l1")))


ATTACKS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
NORMS = {"linf": "Linf", "l2": "L2", "l1": "L1"}
BACKENDS = ("auto", "autoattack", "pyautoattack")


def _attack_names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise TypeError(f"expected a list of attack names such as ['apgd-ce', 'apgd-t'], got {value!r}")
    names = tuple(value)
    for name in names:
        if name not in ATTACKS:
            raise ValueError(
                f"unknown AutoAttack attack {name!r}.{did_you_mean(str(name), ATTACKS)} "
                f"Valid: {', '.join(ATTACKS)}."
            )
    return names


_count = optional(integer(1))


@define(frozen=True, kw_only=True)
class AutoAttackConfig:
    """AutoAttack settings; the defaults are the standard evaluation at the run's threat model."""

    #: the threat model's norm; None: the run's ([attack] norm, else "linf")
    norm: str | None = field(default=None, validator=optional(one_of(*NORMS)))
    #: None: the run's threat model ([attack] eps) when the norm is the run's, else the paper's
    #: radius for the norm: 8/255 (Linf), 128/255 (L2), 12 (L1)
    eps: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    #: AutoAttack's version: "standard" (APGD-CE, APGD-T, FAB-T, Square), "plus", "rand", or "custom" with `attacks`
    version: str = field(default="standard", validator=one_of("standard", "plus", "rand", "custom"))
    #: with version = "custom": the attacks to run, in order (apgd-ce, apgd-dlr, apgd-t, fab, fab-t, square)
    attacks: tuple[str, ...] | None = field(default=None, converter=_attack_names)
    #: None: the evaluation seed ([eval] seed)
    seed: int | None = field(default=None, validator=optional(valid_seed))
    #: images per AutoAttack batch; None: chosen from free GPU memory on CUDA, the evaluation batch size on CPU
    batch_size: int | None = field(default=None, validator=_count)
    #: quick checks only: iterations of APGD, APGD-T and FAB (None: the package's, as the standard
    #: evaluation uses)
    n_iter: int | None = field(default=None, validator=_count)
    #: quick checks only: restarts of APGD (None: the package's)
    n_restarts: int | None = field(default=None, validator=_count)
    #: quick checks only: target classes of APGD-T and FAB-T (None: the package's)
    n_target_classes: int | None = field(default=None, validator=_count)
    #: quick checks only: queries of Square (None: the package's)
    n_queries: int | None = field(default=None, validator=_count)
    #: "auto": the upstream `autoattack` package when importable, else `pyautoattack`
    backend: str = field(default="auto", validator=one_of(*BACKENDS))
    #: report key; default "autoattack" (the run's norm or Linf) or "autoattack_l2" / "autoattack_l1"
    #: for another given norm
    key: str | None = field(default=None, validator=optional(instance_of(str)))
    #: attack only the first `limit` evaluated images (the other metrics keep all of them); the
    #: accuracy is over those, "<key>_n" says how many; None: every evaluated image
    limit: int | None = field(default=None, validator=_count)

    def __attrs_post_init__(self) -> None:
        if self.version == "custom" and not self.attacks:
            raise ValueError("version = 'custom' needs attacks = [...], e.g. ['apgd-ce', 'apgd-t']")
        if self.version != "custom" and self.attacks is not None:
            raise ValueError(
                f"attacks = {list(self.attacks)} is only used with version = 'custom' "
                f"(version {self.version!r} runs its own list)"
            )

    def attack_names(self) -> str:
        """The attacks this configuration runs, as reports name them: "APGD-CE + APGD-T", "standard AA"."""
        if self.version == "custom":
            return " + ".join(name.upper() for name in self.attacks or ())
        return f"{self.version} AA"


#: the default AutoAttack subset at each radius: its two gradient attacks (the usual cheaper choice;
#: FAB-T and Square rarely lower the accuracy further and cost most of the time)
CHEAP_AUTOATTACK = {"version": "custom", "attacks": ["apgd-ce", "apgd-t"]}


def _autoattack_settings(value: Any) -> dict[str, Any] | None:
    """true → APGD-CE + APGD-T, false → none, a table → those AutoAttack settings (checked)."""
    if value is True:
        return dict(CHEAP_AUTOATTACK)
    if value is False or value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"expected true, false or a table of autoattack settings, got {value!r}")
    fixed = {"eps", "key", "norm"} & set(value)
    if fixed:
        names = ", ".join(sorted(fixed))
        raise ValueError(f"autoattack: {names} are set per point of the curve; remove them")
    if "limit" in value:  # the curve attacks the survivors among every evaluated image
        raise ValueError("autoattack: limit does not apply to the eps curve; [eval] limit (or --limit) evaluates "
                         "fewer images")
    try:
        build_config(AutoAttackConfig, value, where="autoattack")
    except RecipeError as exc:
        raise ValueError(str(exc)) from None
    return dict(value)


@define(frozen=True, kw_only=True)
class EpsCurveConfig:
    #: the radii; None: `multiples` of the run's threat-model ε
    eps: tuple[float, ...] | None = field(
        default=None, converter=optional_float_tuple,
        validator=optional(each(in_range(0.0, low_open=True), nonempty=True)),
    )
    #: with `eps` left out, the radii as multiples of the run's ε ([attack] eps, else 8/255);
    #: None: 1, 1.25, 1.5, 1.75, 2 (the paper's Fig. 5: 8…16/255 at 8/255)
    multiples: tuple[float, ...] | None = field(
        default=None, converter=optional_float_tuple,
        validator=optional(each(in_range(0.0, low_open=True), nonempty=True)),
    )
    #: the norm of every radius; None: the run's ([attack] norm, else "linf")
    norm: str | None = field(default=None, validator=optional(one_of("linf", "l2", "l1")))
    #: PGD steps at every radius
    steps: int = field(default=20, validator=integer(1))
    #: the PGD step at every radius; None: a quarter of the run's ε (2/255 at 8/255, the paper's PGD-20)
    step_size: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    #: PGD restarts (an image counts as robust only if it survives every one)
    restarts: int = field(default=1, validator=integer(1))
    #: true: AutoAttack's APGD-CE + APGD-T at each radius (the default); false: PGD only; a table:
    #: AutoAttack settings as for the `autoattack` metric, e.g. {version = "standard"} for the full
    #: standard AutoAttack (adds FAB-T and Square: several times slower)
    autoattack: dict[str, Any] | None = field(default=True, converter=_autoattack_settings)

    def __attrs_post_init__(self) -> None:
        if self.eps is not None and self.multiples is not None:
            raise ValueError("give either 'eps' (the radii) or 'multiples' (of the run's ε), not both")


NORMALIZATIONS = ("delta", "output", "none")


@define(frozen=True, kw_only=True)
class LinearityConfig:
    #: ε ~ U[−eps, eps] per pixel (the paper: 8/255)
    eps: float = field(default=8 / 255, converter=as_float, validator=in_range(0.0, 1.0, low_open=True))
    #: use clamp(x + ε, 0, 1) − x as ε, so that x + ε stays an image
    clamp: bool = field(default=True, validator=instance_of(bool))
    #: "delta": ‖r‖₂ / ‖f(x+ε) − f(x)‖₂ per image; "output": ‖r‖₂ / ‖f(x+ε)‖₂; "none": ‖r‖₂
    normalization: str = field(default="delta", validator=one_of(*NORMALIZATIONS))
    #: noise draws per image (the mean is over images and draws)
    samples: int = field(default=1, validator=integer(1))
    #: report key
    key: str = field(default="linearity_remainder", validator=instance_of(str))


@define(frozen=True, kw_only=True)
class PointwiseConfig:
    #: δ ~ U[−uniform_eps, uniform_eps] per pixel for pointwise_uniform
    uniform_eps: float = field(
        default=8 / 255, converter=as_float, validator=in_range(0.0, 1.0, low_open=True)
    )
    #: keep x + δ in [0, 1] for the uniform noise (attacks always do)
    clamp: bool = field(default=True, validator=instance_of(bool))
    #: steps of the attack that makes δ for pointwise_adv (the paper: 20)
    adv_steps: int = field(default=20, validator=integer(0))
    #: the attack for pointwise_adv as a table; None: the recipe's [attack] (the method's inner
    #: loss) with steps = adv_steps, or PGD (Linf 8/255, step 2/255) when the recipe has none
    attack: dict[str, Any] | None = field(
        default=None, converter=component_table("attack", '{kind = "pgd", steps = 20}'),
        validator=optional(instance_of(dict)),
    )


def _surrogate(value: Any) -> Any:
    if value == "teacher":
        return value
    return component_table(
        "teacher", '{kind = "checkpoint", path = "runs/resnet50/checkpoints/last.safetensors"}'
    )(value)


@define(frozen=True, kw_only=True)
class TransferConfig(VMIFGSMConfig):
    #: Linf radius; None: twice the run's Linf ε (the paper's 16/255 at its 8/255), 16/255 when the
    #: run's threat model is not Linf
    eps: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    #: the model the examples are crafted on: a teacher table, e.g. {kind = "checkpoint",
    #: path = "...", model = {kind = "timm:resnet50"}}, or "teacher" for the recipe's teacher
    surrogate: Any = field(converter=_surrogate)
    #: report key
    key: str = field(default="transfer_vmi_fgsm", validator=instance_of(str))
