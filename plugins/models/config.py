"""The config classes of the architectures: what a model table (``[student]``, a teacher's ``model``) may set.

Kept apart from the components, without torch, so that resolving a recipe (``advdistill recipe
show/check``) validates a table without importing the component's module.
"""

from __future__ import annotations

from typing import Any

from attrs import define, field
from attrs.validators import instance_of

from advdistill.config import (
    as_float,
    as_int_tuple,
    describe,
    each,
    finite,
    in_range,
    integer,
    one_of,
    optional,
    optional_float_tuple,
)

#: Per-channel statistics of the CIFAR training sets, as RobustBench's DMWideResNet uses them.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
DATASET_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
}


@define(frozen=True, kw_only=True)
class NormalizationConfig:
    """``mean``/``std`` (per channel) applied inside the model; none by default, as the official codes."""

    #: per-channel mean subtracted inside the model (one value, or one per channel); give it with `std`
    mean: tuple[float, ...] | None = field(
        default=None, converter=optional_float_tuple, validator=optional(each(finite))
    )
    #: per-channel standard deviation the input is divided by inside the model (> 0); give it with `mean`
    std: tuple[float, ...] | None = field(
        default=None, converter=optional_float_tuple, validator=optional(each(in_range(0.0, low_open=True)))
    )

    def __attrs_post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both 'mean' and 'std', or neither")


@define(frozen=True, kw_only=True)
class SmallCNNConfig(NormalizationConfig):
    #: output channels of each conv-conv-max-pool stage (one stage per entry)
    widths: tuple[int, ...] = field(
        default=(32, 64), converter=as_int_tuple, validator=each(integer(1), nonempty=True)
    )
    #: units of the hidden layer of the MLP head
    hidden: int = field(default=128, validator=integer(1))


#: stem name -> (stride of the 3x3 stem conv, global average pool instead of the fixed 4x4 one)
STEMS = {"cifar": (1, False), "tiny": (1, True), "tiny_stride2": (2, True)}


@define(frozen=True, kw_only=True)
class CifarResNetConfig(NormalizationConfig):
    #: "cifar": 3x3 stride-1 stem + 4x4 average pool (32x32 inputs, the official code);
    #: "tiny": 3x3 stride-1 stem + global average pool (64x64 at full resolution);
    #: "tiny_stride2": 3x3 stride-2 stem + global average pool (64x64 at CIFAR cost)
    stem: str = field(default="cifar", validator=one_of(*STEMS))


@define(frozen=True, kw_only=True)
class WRN3410Config(NormalizationConfig):
    #: add the unused ``sub_block1`` of some checkpoints (RobustBench CIFAR-100 LTD has it)
    sub_block1: bool = field(default=False, validator=instance_of(bool))
    #: dropout probability inside each block (0: none)
    drop_rate: float = field(default=0.0, converter=as_float, validator=in_range(0.0, 1.0))
    #: False: the classifier has no bias (some RobustBench models)
    bias_last: bool = field(default=True, validator=instance_of(bool))


@describe("6n + 4")
def _is_wrn_depth(_instance, attribute, value: int) -> None:
    if (value - 4) % 6 != 0:
        raise ValueError(f"'{attribute.name}' must be 6n + 4 (10, 16, 22, 28, 34, 40, ...), got {value}")


@define(frozen=True, kw_only=True)
class WideResNetConfig(WRN3410Config):
    #: network depth, 6n + 4 (28, 34, 70, ...)
    depth: int = field(default=28, validator=[integer(10), _is_wrn_depth])
    #: channel multiplier of the three groups
    widen_factor: int = field(default=10, validator=integer(1))


#: The activations a DMWideResNet can use (advdistill_plugins.models.dm_wide_resnet.ACTIVATIONS has their modules).
ACTIVATION_NAMES = ("silu", "swish", "relu")


@define(frozen=True, kw_only=True)
class DMWRN2810Config(NormalizationConfig):
    """Explicit ``mean``/``std`` win; else those of ``dataset``; else inferred from the class count."""

    #: whose mean/std normalize the input: "cifar10" or "cifar100"; default: from num_classes (10/100)
    dataset: str | None = field(default=None, validator=optional(one_of(*DATASET_STATS)))
    #: "silu" (= RobustBench's Swish; "swish" is the same) or "relu"
    activation: str = field(default="silu", validator=one_of(*ACTIVATION_NAMES))
    #: zero-pad the input by this many pixels before the first conv
    padding: int = field(default=0, validator=integer(0))


@define(frozen=True, kw_only=True)
class DMWideResNetConfig(DMWRN2810Config):
    #: network depth, 6n + 4
    depth: int = field(default=28, validator=[integer(10), _is_wrn_depth])
    #: widen factor: channel multiplier of the three groups
    width: int = field(default=10, validator=integer(1))


@define(frozen=True, kw_only=True)
class TimmConfig(NormalizationConfig):
    #: the timm model name: set by kind = "timm:<name>", e.g. kind = "timm:resnet50"
    variant: str = field(validator=instance_of(str))
    #: "cifar": stride-1 stem without max-pool for 32x32 inputs; "default": timm's own stem
    stem: str = field(default="default", validator=one_of("default", "cifar"))
    #: extra keyword arguments for timm.create_model (e.g. drop_rate)
    kwargs: dict[str, Any] = field(factory=dict, validator=instance_of(dict))
