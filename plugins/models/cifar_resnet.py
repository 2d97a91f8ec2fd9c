"""CIFAR ResNets as the official distillation codes define them (ARD, RSLAD, IGDM students).

The "kuangliu" CIFAR ResNet (github.com/kuangliu/pytorch-cifar, copied by ARD, RSLAD, AdaAD,
IGDM and RobustBench's ``architectures/resnet.py``): a 3x3 stride-1 stem with 64 channels,
no max-pool, four stages of BasicBlocks (ResNet-18: 2-2-2-2) or Bottlenecks (ResNet-50:
3-4-6-3), 4x4 average pooling and a linear classifier; PyTorch's default initialisation.

Why not timm's ``resnet18`` with a 3x3 stem? It computes the same function with the same
11,173,962 parameters, but (1) its ``zero_init_last`` starts every block's last BN at
γ = 0 and its convs use Kaiming-normal (fan_out) init, unlike the official students, and
(2) its state_dict keys (``downsample``/``fc``) differ from the official checkpoints'
(``shortcut``/``linear``). This file keeps both the init and the keys of the official code,
so that their released students load with ``strict=True``; it registers the architectures
with timm (``adv_cifar_resnet18``, ``adv_cifar_resnet50``) so they build through
``timm.create_model`` like every other model.
"""

from __future__ import annotations

import torch.nn.functional as F
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import Tensor, nn

from advdistill_plugins.models.common import NormalizationConfig, TimmFactory, timm_cfg


class BasicBlock(nn.Module):
    """Two 3x3 convs with BN; a 1x1 conv + BN shortcut when the shape changes."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand (x4), each with BN; shortcut as BasicBlock."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    # an empty Sequential is the identity and keeps the official key layout (shortcut.0/.1)
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes)
    )


class CifarResNet(nn.Module):
    """CIFAR ResNet: (B, in_chans, 32, 32) images -> (B, num_classes) logits.

    Other input sizes work as long as the last stage's map is 4x4 (32x32 inputs); the 4x4
    average pool of the official code is kept, not replaced by a global pool.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        num_blocks: tuple[int, int, int, int],
        num_classes: int = 10,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_chans, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes: int, n: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.flatten(1))


default_cfgs = generate_default_cfgs({
    "adv_cifar_resnet18": timm_cfg(first_conv="conv1", classifier="linear"),
    "adv_cifar_resnet50": timm_cfg(first_conv="conv1", classifier="linear"),
})


def _create(variant: str, pretrained: bool, **kwargs) -> CifarResNet:
    return build_model_with_cfg(CifarResNet, variant, pretrained, **kwargs)


@register_model
def adv_cifar_resnet18(pretrained: bool = False, **kwargs) -> CifarResNet:
    """CIFAR ResNet-18 (BasicBlock 2-2-2-2): 11,173,962 parameters for 10 classes."""
    return _create("adv_cifar_resnet18", pretrained, block=BasicBlock, num_blocks=(2, 2, 2, 2), **kwargs)


@register_model
def adv_cifar_resnet50(pretrained: bool = False, **kwargs) -> CifarResNet:
    """CIFAR ResNet-50 (Bottleneck 3-4-6-3): 23,520,842 parameters for 10 classes."""
    return _create("adv_cifar_resnet50", pretrained, block=Bottleneck, num_blocks=(3, 4, 6, 3), **kwargs)


class CifarResNet18(TimmFactory):
    """ResNet-18 of the official ARD/RSLAD/IGDM codes (3x3 stem, no max-pool): 11.17 M params."""

    Config = NormalizationConfig
    variant = "adv_cifar_resnet18"


class CifarResNet50(TimmFactory):
    """CIFAR ResNet-50 (3x3 stem, no max-pool, Bottlenecks): the transfer-attack surrogate.

    The kuangliu-style ResNet-50 that CIFAR transfer-attack code and RobustBench
    (``Engstrom2019Robustness``) use, rather than timm's ImageNet ``resnet50`` with a new
    stem: its key names match those checkpoints, so a surrogate trained elsewhere loads as is.
    """

    Config = NormalizationConfig
    variant = "adv_cifar_resnet50"
