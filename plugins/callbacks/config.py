"""The config classes of the training callbacks: what a ``[callbacks.<label>]`` table may set.

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
class ProgressConfig:
    #: keep each epoch's finished bar on screen
    leave: bool = field(default=True, validator=instance_of(bool))


@define(frozen=True, kw_only=True)
class PeriodicEvalConfig:
    #: evaluate every this many epochs (and after the last)
    every: int = field(default=1, validator=integer(1))
    #: the first ``limit`` test images (the same every time)
    limit: int | None = field(default=None, validator=optional(integer(1)))
    #: PGD steps
    steps: int = field(default=10, validator=integer(1))
    #: PGD radius; None: the run's threat model (the recipe's [attack] eps and norm, else Linf 8/255)
    eps: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    #: None: the recipe's [attack] step_size, else ε/4
    step_size: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    #: None: the recipe's [eval] batch_size
    batch_size: int | None = field(default=None, validator=optional(integer(1)))
    #: also evaluate the models other callbacks keep beside the student (the ema callback's averaged
    #: weights): keys "<name>/clean", "<name>/pgd", e.g. "ema/pgd"
    others: bool = field(default=True, validator=instance_of(bool))


@define(frozen=True, kw_only=True)
class LinearityTrackerConfig:
    #: record every this many epochs (and after the last)
    every: int = field(default=1, validator=integer(1))
    #: the first ``limit`` test images (the same every epoch)
    limit: int = field(default=256, validator=integer(1))
    #: images per forward
    batch_size: int = field(default=256, validator=integer(1))
    #: ε ~ U[−eps, eps] per pixel, as the `linearity` metric
    eps: float = field(default=8 / 255, converter=as_float, validator=in_range(0.0, 1.0, low_open=True))
    #: as the `linearity` metric's: "delta", "output" or "none"
    normalization: str = field(default="delta", validator=one_of("delta", "output", "none"))
    #: the noise is drawn from this seed every time, so epochs are compared on the same ε
    seed: int = field(default=0, validator=valid_seed)


@define(frozen=True, kw_only=True)
class EMAConfig:
    #: the decay of each update: average ← decay · average + (1 − decay) · weights
    decay: float = field(default=0.999, converter=as_float, validator=in_range(0.0, 1.0, high_open=True))
    #: update the average every this many optimizer steps (the decay is per update)
    every: int = field(default=1, validator=integer(1))
    #: the decay of the first updates, after n updates: "count" min(decay, (1 + n) / (10 + n)),
    #: "power" min(decay, 1 − (1 + n)^−warmup_power) (timm's ModelEmaV3), "none" decay from the start;
    #: the first update copies the weights in every case
    warmup: str = field(default="count", validator=one_of("count", "power", "none"))
    #: the exponent of warmup = "power" (timm suggests 2/3 for long runs, 3/4 for short ones)
    warmup_power: float = field(default=2 / 3, converter=as_float, validator=in_range(0.0, low_open=True))


@define(frozen=True, kw_only=True)
class TensorBoardConfig:
    #: the folder of the event files (`tensorboard --logdir` it); relative to the run directory
    log_dir: str = field(default="tensorboard", validator=instance_of(str))


@define(frozen=True, kw_only=True)
class MLflowConfig:
    #: e.g. "sqlite:///mlflow.db" (a file in the working directory; "sqlite:////abs/path.db"),
    #: "http://host:5000"; none: MLFLOW_TRACKING_URI, else MLflow's default store
    tracking_uri: str | None = field(default=None, validator=optional(instance_of(str)))
    #: the experiment (created when missing)
    experiment: str = field(default="advdistill", validator=instance_of(str))
    #: the MLflow run's name; none: the recipe's name
    run_name: str | None = field(default=None, validator=optional(instance_of(str)))
    #: where a new experiment keeps its artifacts; none: MLflow's default for the store
    artifact_location: str | None = field(default=None, validator=optional(instance_of(str)))
    #: checkpoints uploaded at the end: "best" (best.safetensors, else last), "all" (every weights
    #: file: last, best, ema), "none"
    checkpoints: str = field(default="best", validator=one_of("best", "all", "none"))


@define(frozen=True, kw_only=True)
class WandbConfig:
    #: the W&B project
    project: str = field(default="advdistill", validator=instance_of(str))
    #: the team or user; none: your default entity
    entity: str | None = field(default=None, validator=optional(instance_of(str)))
    #: "online", "offline" (no network; `wandb sync` later) or "disabled"; none: WANDB_MODE, else online
    mode: str | None = field(default=None, validator=optional(one_of("online", "offline", "disabled")))
    #: the W&B run's name; none: the recipe's name
    name: str | None = field(default=None, validator=optional(instance_of(str)))
    #: where W&B writes its files (a wandb/ folder inside it); relative to the run directory
    dir: str = field(default=".", validator=instance_of(str))
