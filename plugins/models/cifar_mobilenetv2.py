"""CIFAR MobileNetV2 as the official distillation codes define it (RSLAD, ARD, IGDM students).

The "kuangliu" CIFAR MobileNetV2 (github.com/kuangliu/pytorch-cifar, copied by RSLAD's
``cifar10_models/mobilenet_v2.py`` and ``cifar100_models/mobilenet_v2.py``): a 3x3 stride-1
stem with 32 channels, inverted-residual blocks with ReLU (not ReLU6) and the standard
(expansion, channels, blocks, stride) table except that the second stage has stride 1
(32x32 inputs reach 4x4 before the head), a 1x1 conv to 1280 channels, 4x4 average
pooling and a linear classifier. Residuals: an identity when the block keeps the shape, a
1x1 conv + BN when only the channel count changes, none for strided blocks.
2,296,922 parameters for 10 classes; PyTorch's default initialisation; the official key
names (``conv1``, ``layers.N.conv1``, ``shortcut.0``, ``linear``), so released students load.
"""

from __future__ import annotations

import torch.nn.functional as F
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import Tensor, nn

from advdistill_plugins.models.common import NormalizationConfig, TimmFactory, timm_cfg

#: (expansion, out_channels, blocks, stride of the first block); stage 2 stride 1 for CIFAR
CIFAR_CFG: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class InvertedResidual(nn.Module):
    """1x1 expand, 3x3 depthwise (strided), 1x1 project, each with BN; ReLU after the first two."""

    def __init__(self, in_planes: int, out_planes: int, expansion: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        planes = expansion * in_planes
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()  # identity; keeps the official key layout
        if stride == 1 and in_planes != out_planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, bias=False),
                                          nn.BatchNorm2d(out_planes))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class CifarMobileNetV2(nn.Module):
    """CIFAR MobileNetV2: (B, in_chans, 32, 32) images -> (B, num_classes) logits."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_chans, 32, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        blocks, in_planes = [], 32
        for expansion, out_planes, n, stride in CIFAR_CFG:
            for s in [stride] + [1] * (n - 1):
                blocks.append(InvertedResidual(in_planes, out_planes, expansion, s))
                in_planes = out_planes
        self.layers = nn.Sequential(*blocks)
        self.conv2 = nn.Conv2d(in_planes, 1280, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.linear = nn.Linear(1280, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.relu(self.bn2(self.conv2(out)))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.flatten(1))


default_cfgs = generate_default_cfgs({
    "adv_cifar_mobilenetv2": timm_cfg(first_conv="conv1", classifier="linear"),
})


@register_model
def adv_cifar_mobilenetv2(pretrained: bool = False, **kwargs) -> CifarMobileNetV2:
    """CIFAR MobileNetV2 of the official codes: 2,296,922 parameters for 10 classes."""
    return build_model_with_cfg(CifarMobileNetV2, "adv_cifar_mobilenetv2", pretrained, **kwargs)


class CifarMobileNetV2Factory(TimmFactory):
    """MobileNetV2 of the official RSLAD/ARD/IGDM codes (stride-1 stem): 2.30 M params."""

    Config = NormalizationConfig
    variant = "adv_cifar_mobilenetv2"
