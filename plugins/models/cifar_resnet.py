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

64x64 inputs (Tiny-ImageNet): ``stem = "tiny"`` keeps the 3x3 stride-1 stem and replaces the
fixed 4x4 average pool by a global one (the last map is 8x8), as the Tiny-ImageNet
PreAct-ResNet-18 of the HAT / DM-AT line of robust-training code does (``ti_preact_resnet``);
``stem = "tiny_stride2"`` gives the stem conv stride 2 instead, so the stages see 32x32 maps and
cost what they cost on CIFAR. All stems have the same parameters and state_dict keys.
"""

from __future__ import annotations

import torch.nn.functional as F
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import Tensor, nn

from advdistill.errors import RecipeError
from advdistill_plugins.models.common import TimmFactory, timm_cfg
from advdistill_plugins.models.config import STEMS, CifarResNetConfig


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

    With ``stem = "cifar"`` (the official code) the last stage's map must be 4x4 (28x28 to
    32x32 inputs): its 4x4 average pool is kept, not replaced by a global pool. The
    ``"tiny"`` / ``"tiny_stride2"`` stems pool globally, for 64x64 inputs (see the module doc).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        num_blocks: tuple[int, int, int, int],
        num_classes: int = 10,
        in_chans: int = 3,
        stem: str = "cifar",
    ) -> None:
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {', '.join(map(repr, STEMS))}, got {stem!r}")
        stride, self.global_pool = STEMS[stem]
        self.stem = stem
        self.num_classes = num_classes
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_chans, 64, 3, stride=stride, padding=1, bias=False)
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
        if self.global_pool:
            out = out.mean(dim=(2, 3))
        else:
            self._check_cifar_map(out, x)
            out = F.avg_pool2d(out, 4)
        return self.linear(out.flatten(1))

    def _check_cifar_map(self, out: Tensor, x: Tensor) -> None:
        # the fixed 4x4 pool would fail on 64x64 inputs with a bare shape error, and silently
        # pool a corner on 36..60-pixel inputs: say what is wrong instead
        if tuple(out.shape[-2:]) != (4, 4):
            raise RecipeError(
                f"this CIFAR ResNet (stem = \"cifar\") takes 32x32 images (its last map must be 4x4 for the "
                f"official 4x4 average pool), got {tuple(x.shape[-2:])}; for 64x64 data such as Tiny-ImageNet "
                "set [student] stem = \"tiny\" (or \"tiny_stride2\")"
            )


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


class _CifarResNetFactory(TimmFactory):
    Config = CifarResNetConfig

    def model_args(self, num_classes, in_chans):
        return {"stem": self.config.stem}


class CifarResNet18(_CifarResNetFactory):
    """ResNet-18 of the official ARD/RSLAD/IGDM codes (3x3 stem, no max-pool): 11.17 M params.

    ``stem = "tiny"`` (or ``"tiny_stride2"``) adapts it to 64x64 inputs such as Tiny-ImageNet.
    """

    variant = "adv_cifar_resnet18"


class CifarResNet50(_CifarResNetFactory):
    """CIFAR ResNet-50 (3x3 stem, no max-pool, Bottlenecks): the transfer-attack surrogate.

    The kuangliu-style ResNet-50 that CIFAR transfer-attack code and RobustBench
    (``Engstrom2019Robustness``) use, rather than timm's ImageNet ``resnet50`` with a new
    stem: its key names match those checkpoints, so a surrogate trained elsewhere loads as is.
    Takes the same ``stem`` options as ``cifar_resnet18``.
    """

    variant = "adv_cifar_resnet50"
