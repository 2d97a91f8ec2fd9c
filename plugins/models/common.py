"""What every model factory shares: normalization inside the model (inputs stay in [0, 1]),
and building registered architectures through ``timm.create_model``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import torch
from attrs import define, field
from torch import Tensor, nn

from advdistill.config import as_float_tuple, each, finite, in_range, optional
from advdistill.errors import RecipeError
from advdistill.interfaces import ModelFactory

#: Per-channel statistics of the CIFAR training sets, as RobustBench's DMWideResNet uses them.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
DATASET_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
}


class Normalize(nn.Module):
    """(x − mean) / std per channel, so that ε stays in pixel units outside the model."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        # non-persistent: the state_dict keeps the architecture's own keys (RobustBench convention)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class Normalized(nn.Module):
    """``model(normalize(x))``; the wrapped model's state_dict keys are kept unprefixed."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(self.normalize(x))

    def state_dict(self, *args, **kwargs):  # keys as if unwrapped
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)


def _optional_floats(value):
    return None if value is None else as_float_tuple(value)


@define(frozen=True, kw_only=True)
class NormalizationConfig:
    """``mean``/``std`` (per channel) applied inside the model; none by default, as the official codes."""

    #: per-channel mean subtracted inside the model (one value, or one per channel); give it with `std`
    mean: tuple[float, ...] | None = field(default=None, converter=_optional_floats, validator=optional(each(finite)))
    #: per-channel standard deviation the input is divided by inside the model (> 0); give it with `mean`
    std: tuple[float, ...] | None = field(
        default=None, converter=_optional_floats, validator=optional(each(in_range(0.0, low_open=True)))
    )

    def __attrs_post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both 'mean' and 'std', or neither")


def check_stats(mean: Sequence[float], std: Sequence[float], in_chans: int) -> None:
    """Raise a RecipeError unless ``mean``/``std`` have 1 or ``in_chans`` values each."""
    if len(mean) not in (1, in_chans) or len(std) != len(mean):
        raise RecipeError(
            f"model mean/std need 1 or {in_chans} values each (one per input channel), "
            f"got mean = {list(mean)}, std = {list(std)}"
        )


def with_normalization(model: nn.Module, cfg: NormalizationConfig, in_chans: int) -> nn.Module:
    """``model`` itself, or wrapped in :class:`Normalized` when ``cfg`` gives mean/std."""
    if cfg.mean is None:
        return model
    check_stats(cfg.mean, cfg.std, in_chans)
    return Normalized(model, cfg.mean, cfg.std)


class TimmFactory(ModelFactory):
    """A factory building ``timm.create_model(variant, **model_args())`` plus normalization.

    Subclasses set ``variant`` (a name registered with timm by their module) and override
    :meth:`model_args`; nothing is ever downloaded (``pretrained=False``).
    """

    variant: ClassVar[str]

    def model_args(self, num_classes: int, in_chans: int) -> dict[str, Any]:
        """Keyword arguments of the architecture beyond ``num_classes``/``in_chans``."""
        return {}

    def build(self, num_classes: int, in_chans: int) -> nn.Module:
        import timm

        model = timm.create_model(
            self.variant, pretrained=False, num_classes=num_classes, in_chans=in_chans,
            **self.model_args(num_classes, in_chans),
        )
        return self.finish(model, in_chans)

    def finish(self, model: nn.Module, in_chans: int) -> nn.Module:
        """The model as returned to the caller: with the config's normalization by default."""
        return with_normalization(model, self.config, in_chans)


def timm_cfg(**kwargs: Any) -> dict[str, Any]:
    """timm's pretrained-config entry for a CIFAR-sized model without downloadable weights.

    Inputs are images in [0, 1]; any normalization happens inside the model, hence the
    identity mean/std here (timm's data pipeline must not normalize a second time).
    """
    return {
        "url": "", "num_classes": 10, "input_size": (3, 32, 32), "pool_size": None,
        "crop_pct": 1.0, "interpolation": "bilinear", "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0),
        **kwargs,
    }


__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DATASET_STATS",
    "NormalizationConfig",
    "Normalize",
    "Normalized",
    "TimmFactory",
    "attrs",
    "check_stats",
    "timm_cfg",
    "with_normalization",
]
