"""The config classes of the attacks: what an ``[attack]`` table (or a metric's attack table) may set.

Kept apart from the components, without torch, so that resolving a recipe (``advdistill recipe
show/check``) validates a table without importing the component's module.
"""

from __future__ import annotations

from attrs import define, field
from attrs.validators import instance_of

from advdistill.config import (
    as_float,
    in_range,
    integer,
    one_of,
    optional,
    optional_float,
    positive_or_none,
    valid_seed,
)


@define(frozen=True, kw_only=True)
class IterativeConfig:
    """Parameters every iterative attack shares (defaults: the paper's PGD, ε 8/255, step 2/255)."""

    #: radius of the threat model's ball, in pixel units ([0, 1] images)
    eps: float = field(default=8 / 255, converter=as_float, validator=in_range(0.0))
    #: ascent step size (Linf: of the sign step; L2/L1: of the normalised step)
    step_size: float = field(default=2 / 255, converter=as_float, validator=in_range(0.0))
    #: ascent steps (0: the random start, projected)
    steps: int = field(default=10, validator=integer(0))
    #: the threat model's norm
    norm: str = field(default="linf", validator=one_of("linf", "l2", "l1"))
    #: "uniform": x + U(−ε, ε) (Madry); "normal": x + std·N(0, 1) (TRADES/RSLAD/AdaAD); "none": x
    start: str = field(default="uniform", validator=one_of("uniform", "normal", "none"))
    #: standard deviation of the "normal" start
    start_std: float = field(default=0.001, converter=as_float, validator=in_range(0.0, 1.0))
    #: clamp the random start to [0, 1] (some official codes do not; every step clamps anyway)
    clamp_start: bool = field(default=True, validator=instance_of(bool))
    #: seed of the private generator used when the caller passes none (evaluation)
    seed: int = field(default=0, validator=valid_seed)
    #: ε warm-up: during training, ε and the step size grow linearly (per step) from 0 to their
    #: values over this many epochs; outside training (no step context) the full ε is used
    warmup_epochs: float = field(default=0.0, converter=as_float, validator=in_range(0.0))


@define(frozen=True, kw_only=True)
class NormalStartConfig(IterativeConfig):
    """The TRADES-family start: ``x + 0.001·N(0, 1)``, not clamped (TRADES, MART, RSLAD, AdaAD codes)."""

    start: str = field(default="normal", validator=one_of("uniform", "normal", "none"))
    clamp_start: bool = field(default=False, validator=instance_of(bool))


@define(frozen=True, kw_only=True)
class PGDConfig(IterativeConfig):
    #: "sum": each example ascends its own CE; "mean": CE averaged over the batch, as the IGDM
    #: authors' ARD scripts (the direction is the same: only the gradient's scale changes by 1/B)
    reduction: str = field(default="sum", validator=one_of("sum", "mean"))


@define(frozen=True, kw_only=True)
class VMIFGSMConfig:
    """VMI-FGSM (Wang & He, CVPR 2021) with the official code's defaults (JHL-HUST/VT)."""

    #: Linf radius of the perturbation (the paper's transfer attack: 16/255)
    eps: float = field(default=16 / 255, converter=as_float, validator=in_range(0.0, 1.0, low_open=True))
    #: iterations (each: one gradient at x_adv plus N at its neighbours)
    steps: int = field(default=10, validator=integer(1))
    #: None: eps / steps, as the official code
    step_size: float | None = field(
        default=None, converter=optional_float, validator=positive_or_none
    )
    #: momentum decay μ
    decay: float = field(default=1.0, converter=as_float, validator=in_range(0.0))
    #: N, the neighbours sampled per step for the gradient variance
    n_neighbors: int = field(default=20, validator=integer(1))
    #: neighbours are x_adv + U[−β·eps, β·eps]
    beta: float = field(default=1.5, converter=as_float, validator=in_range(0.0))
    #: neighbours per forward/backward pass (memory vs speed); all N by default
    neighbors_per_pass: int | None = field(default=None, validator=optional(integer(1)))
    #: seed of the private generator used when the caller passes none
    seed: int = field(default=0, validator=valid_seed)
