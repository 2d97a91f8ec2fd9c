"""What every model factory shares: normalization inside the model (inputs stay in [0, 1]),
and building registered architectures through ``timm.create_model``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import torch
from torch import Tensor, nn

from advdistill.errors import RecipeError
from advdistill.interfaces import ModelFactory

# re-exported: the architectures and the tests import the statistics from here
from advdistill_plugins.models.config import CIFAR10_MEAN as CIFAR10_MEAN
from advdistill_plugins.models.config import CIFAR10_STD as CIFAR10_STD
from advdistill_plugins.models.config import CIFAR100_MEAN as CIFAR100_MEAN
from advdistill_plugins.models.config import CIFAR100_STD as CIFAR100_STD
from advdistill_plugins.models.config import DATASET_STATS as DATASET_STATS
from advdistill_plugins.models.config import NormalizationConfig


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
