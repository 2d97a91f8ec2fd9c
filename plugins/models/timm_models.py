"""Any timm architecture as a student, teacher or surrogate; nothing is ever downloaded.

``kind = "timm:<name>"`` builds ``timm.create_model(name, pretrained=False, ...)``;
``stem = "cifar"`` adapts an ImageNet stem to 32x32 inputs (see :func:`cifar_stem`).
"""

from __future__ import annotations

import timm
from torch import nn

from advdistill.errors import PluginError
from advdistill_plugins.models.common import TimmFactory
from advdistill_plugins.models.config import TimmConfig


def cifar_stem(model: nn.Module, in_chans: int) -> nn.Module:
    """Adapt an ImageNet stem (stride 4 before the first stage) to 32x32 inputs, in place.

    - ResNet family (``conv1`` + ``maxpool``): a 3x3 stride-1 ``conv1`` and no max-pool,
      as the CIFAR ResNets of the adversarial-training literature;
    - EfficientNet/MobileNet family (``conv_stem``): the stem conv gets stride 1.

    The replaced convs are freshly initialised; other families raise a PluginError.
    """
    conv1 = getattr(model, "conv1", None)
    if isinstance(conv1, nn.Conv2d) and hasattr(model, "maxpool"):
        model.conv1 = nn.Conv2d(in_chans, conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
        return model
    stem = getattr(model, "conv_stem", None)
    if isinstance(stem, nn.Conv2d):
        model.conv_stem = nn.Conv2d(in_chans, stem.out_channels, kernel_size=stem.kernel_size, stride=1,
                                    padding=stem.padding, bias=stem.bias is not None)
        return model
    raise PluginError(
        f"stem = \"cifar\" knows ResNet-style models (a conv1 conv + maxpool) and EfficientNet/MobileNet-"
        f"style models (a conv_stem conv); timm's {type(model).__name__} has neither. "
        "Use stem = \"default\", or a CIFAR architecture (cifar_resnet18, cifar_mobilenetv2, wideresnet)."
    )


class TimmModel(TimmFactory):
    """Any timm architecture, randomly initialised: ``kind = "timm:resnet50"``."""

    Config = TimmConfig

    @property
    def variant(self) -> str:  # type: ignore[override]
        return self.config.variant

    def model_args(self, num_classes, in_chans):
        cfg = self.config
        if cfg.kwargs.get("pretrained") or "pretrained_cfg" in cfg.kwargs or "checkpoint_path" in cfg.kwargs:
            raise PluginError(
                f"timm:{cfg.variant}: pretrained weights would be downloaded or read unchecked; load trained "
                "weights through a teacher loader ([teacher] kind = \"checkpoint\" or \"robustbench\")"
            )
        if not timm.is_model(cfg.variant):
            close = timm.list_models(f"*{cfg.variant}*")[:5]
            hint = f" Similar: {', '.join(close)}." if close else " See timm.list_models()."
            raise PluginError(f"timm has no model {cfg.variant!r}.{hint}")
        return {k: v for k, v in cfg.kwargs.items() if k != "pretrained"}

    def finish(self, model, in_chans):
        if self.config.stem == "cifar":
            model = cifar_stem(model, in_chans)
        return super().finish(model, in_chans)
