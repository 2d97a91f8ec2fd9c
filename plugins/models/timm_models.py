"""timm-backed architectures; nothing is ever downloaded (``pretrained`` is refused)."""

from __future__ import annotations

from typing import Any

import timm
from attrs import define, field
from attrs.validators import instance_of
from torch import nn

from advdistill.config import one_of
from advdistill.errors import PluginError
from advdistill.interfaces import ModelFactory
from advdistill_plugins.models.common import NormalizationConfig, with_normalization


def cifar_stem(model: nn.Module, in_chans: int) -> nn.Module:
    """Replace a ResNet-style 7x7/stride-2 stem and max-pool by a 3x3/stride-1 conv (32x32 inputs)."""
    conv1 = getattr(model, "conv1", None)
    if not isinstance(conv1, nn.Conv2d) or not hasattr(model, "maxpool"):
        raise PluginError(
            f"stem = \"cifar\" knows ResNet-style models (conv1 + maxpool); {type(model).__name__} has none. "
            "Use stem = \"default\"."
        )
    model.conv1 = nn.Conv2d(in_chans, conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


@define(frozen=True, kw_only=True)
class TimmConfig(NormalizationConfig):
    variant: str = field(validator=instance_of(str))
    #: "cifar": 3x3 stride-1 stem without max-pool (ResNet family); "default": timm's own stem
    stem: str = field(default="default", validator=one_of("default", "cifar"))
    #: extra keyword arguments for timm.create_model (e.g. drop_rate)
    kwargs: dict[str, Any] = field(factory=dict, validator=instance_of(dict))


class TimmModel(ModelFactory):
    """Any timm architecture, randomly initialised: ``kind = "timm:resnet50"``."""

    Config = TimmConfig

    def build(self, num_classes, in_chans):
        cfg = self.config
        if cfg.kwargs.get("pretrained"):
            raise PluginError("pretrained weights would be downloaded; load weights through a teacher loader")
        if not timm.is_model(cfg.variant):
            close = timm.list_models(f"*{cfg.variant}*")[:5]
            hint = f" Similar: {', '.join(close)}." if close else ""
            raise PluginError(f"timm has no model {cfg.variant!r}.{hint}")
        model = timm.create_model(cfg.variant, pretrained=False, num_classes=num_classes, in_chans=in_chans,
                                  **cfg.kwargs)
        if cfg.stem == "cifar":
            model = cifar_stem(model, in_chans)
        return with_normalization(model, cfg, in_chans)


@define(frozen=True, kw_only=True)
class CifarResNet18Config(NormalizationConfig):
    pass


class CifarResNet18(ModelFactory):
    """ResNet-18 for 32x32 inputs (3x3 stem, no max-pool): ~11.2 M parameters for 10 classes."""

    Config = CifarResNet18Config

    def build(self, num_classes, in_chans):
        model = timm.create_model("resnet18", pretrained=False, num_classes=num_classes, in_chans=in_chans)
        return with_normalization(cifar_stem(model, in_chans), self.config, in_chans)
