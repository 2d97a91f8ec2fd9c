"""The config classes of the training objectives: what an ``[objective]`` table may set.

Kept apart from the components, without torch, so that resolving a recipe (``advdistill recipe
show/check``) validates a table without importing the component's module.
"""

from __future__ import annotations

from typing import Any

from attrs import Factory, define, field
from attrs.validators import instance_of

from advdistill.config import (
    ScheduledValue,
    as_float,
    component_table,
    describe,
    format_number,
    in_range,
    integer,
    one_of,
    schedule_in_range,
    scheduled,
)


@define(frozen=True, kw_only=True)
class TRADESConfig:
    #: weight of the robust KL term (official default 6; a number or a schedule table)
    beta: ScheduledValue = scheduled(6.0, low=0.0)
    #: detach p_S(x) in the KL term; the official loss does not (gradient flows into both branches)
    detach_clean: bool = field(default=False, validator=instance_of(bool))


@define(frozen=True, kw_only=True)
class MARTConfig:
    #: weight of the misclassification-aware KL term (official WideResNet default 6; ResNet-18 script: 5)
    beta: ScheduledValue = scheduled(6.0, low=0.0)
    #: "official": the constants of the official mart.py (log(1.0001 − p + 1e-12), log(q + 1e-12),
    #: weight 1.0000001 − p_y); "exact": the paper's −log(1 − p), exact KL, weight 1 − p_y
    form: str = field(default="official", validator=one_of("official", "exact"))


@define(frozen=True, kw_only=True)
class ARDConfig:
    #: distillation temperature τ (official default 30; the IGDM copy of ARD uses 1)
    temperature: float = field(default=30.0, converter=as_float, validator=in_range(0.0, low_open=True))
    #: α: weight of the KL term, 1 − α of the clean CE (official default 1: CE off)
    alpha: ScheduledValue = scheduled(1.0, low=0.0, high=1.0)
    #: "mean": KLDivLoss's default sum/(B·C), official ARD; "batchmean": sum/B (IAD's, IGDM's copies)
    reduction: str = field(default="mean", validator=one_of("mean", "batchmean"))


def _by_form(values: dict[str, Any]) -> Factory:
    """An attrs default that depends on the already-set ``form`` field."""
    # an invalid form falls back to "I" here; the form's validator then reports it
    default = describe(" / ".join(f"{format_number(v)} (form {form})" for form, v in values.items()))(
        lambda self: values.get(self.form, values["I"])
    )
    return Factory(default, takes_self=True)


_scheduled = ScheduledValue.from_value  # a number or a schedule table, as ``scheduled()`` fields


@define(frozen=True, kw_only=True)
class IADConfig:
    #: "I": IAD-I (default; distils the robust teacher's clean output); "II": IAD-II (adds a
    #: standard teacher and distils the robust teacher at x_adv); the defaults follow the form
    form: str = field(default="I", validator=one_of("I", "II"))
    #: introspection starts once this many epochs are completed (the official loops count epochs
    #: from 0 and test ``epoch >= begin``)
    begin: int = field(default=_by_form({"I": 60, "II": 40}), validator=integer(0))
    #: a: weight of the distillation terms
    alpha: ScheduledValue = field(
        default=_by_form({"I": 1.0, "II": 0.5}), converter=_scheduled, validator=schedule_in_range(0.0, 1.0)
    )
    #: a2: weight of the standard teacher's term (IAD-II only)
    alpha2: ScheduledValue = field(
        default=_by_form({"I": 0.0, "II": 0.25}), converter=_scheduled, validator=schedule_in_range(0.0, 1.0)
    )
    #: exponent of the introspection weight A_i = p_T(y_i | x_adv_i)^β
    beta: float = field(default=0.1, converter=as_float, validator=in_range(0.0))
    #: τ of the distillation KL terms (official: 1)
    temperature: float = field(default=1.0, converter=as_float, validator=in_range(0.0, low_open=True))
    #: IAD-II's standard (non-robust) teacher, a teacher table, e.g.
    #: {kind = "checkpoint", path = "runs/standard/checkpoints/best.safetensors"}; loaded once, lazily
    standard_teacher: dict[str, Any] | None = field(
        default=None, converter=component_table("teacher", '{kind = "checkpoint", path = "..."}')
    )

    def __attrs_post_init__(self) -> None:
        if self.form == "I":
            if self.standard_teacher is not None:
                raise ValueError('standard_teacher is used by form = "II" only; remove it or set form = "II"')
            if not (self.alpha2.is_constant and self.alpha2.params["value"] == 0.0):
                raise ValueError("alpha2 (the standard teacher's weight) is used by form = \"II\" only")
        elif self.standard_teacher is None:
            raise ValueError(
                "form = \"II\" needs a standard (non-robust) teacher: standard_teacher = "
                "{kind = \"checkpoint\", path = \"...\"} (any teacher table)"
            )


@define(frozen=True, kw_only=True)
class RSLADConfig:
    #: weight of the adversarial term KL(p_T(x) ‖ p_S(x_adv))
    adv_weight: ScheduledValue = scheduled(5 / 6, low=0.0)
    #: weight of the clean term KL(p_T(x) ‖ p_S(x))
    nat_weight: ScheduledValue = scheduled(1 / 6, low=0.0)
    #: the official CIFAR-100 script multiplies both terms by 10
    scale: float = field(default=1.0, converter=as_float, validator=in_range(0.0))
    #: "official": −a·b + b·log(b + 1e-5) (the 1e-5 shifts the value, not the gradient); "exact": KL
    form: str = field(default="official", validator=one_of("official", "exact"))
    #: "mean" over B·C as the official code; "batchmean" for the per-example KL
    reduction: str = field(default="mean", validator=one_of("mean", "batchmean"))
    #: a temperature for the soft labels (official: 1)
    temperature: float = field(default=1.0, converter=as_float, validator=in_range(0.0, low_open=True))
    #: detach the teacher's soft labels before the KL, as the official code
    detach_target: bool = field(default=True, validator=instance_of(bool))


@define(frozen=True, kw_only=True)
class AdaADConfig:
    #: α: weight of the adversarial KL, 1 − α of the clean KL (official default 1)
    alpha: ScheduledValue = scheduled(1.0, low=0.0, high=1.0)
    #: "mean" = sum/(B·C) as the official CIFAR-10 code; "batchmean" = sum/B as its CIFAR-100 code
    reduction: str = field(default="mean", validator=one_of("mean", "batchmean"))
