"""What every model factory shares: normalization inside the model (inputs stay in [0, 1])."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from attrs import define, field
from torch import Tensor, nn

from advdistill.config import as_float_tuple


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

    mean: tuple[float, ...] | None = field(default=None, converter=_optional_floats)
    std: tuple[float, ...] | None = field(default=None, converter=_optional_floats)

    def __attrs_post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both 'mean' and 'std', or neither")


def with_normalization(model: nn.Module, cfg: NormalizationConfig, in_chans: int) -> nn.Module:
    if cfg.mean is None:
        return model
    if len(cfg.mean) not in (1, in_chans) or len(cfg.std) != len(cfg.mean):
        raise ValueError(f"mean/std need 1 or {in_chans} values each, got {cfg.mean} / {cfg.std}")
    return Normalized(model, cfg.mean, cfg.std)


__all__ = ["NormalizationConfig", "Normalize", "Normalized", "attrs", "with_normalization"]
