"""RobustBench's DMWideResNet (DeepMind style): the BDM-AT and IKL-AT WRN-28-10 teachers.

Same layers and forward as RobustBench ``architectures/dm_wide_resnet.py`` and the same
state_dict keys, so ``Wang2023Better_WRN-28-10`` and ``Cui2023Decoupled_WRN-28-10``
checkpoints load with ``strict=True``:

``init_conv.weight``, ``layer.{0,1,2}.block.{i}.batchnorm_0.*``, ``.conv_0.weight``,
``.batchnorm_1.*``, ``.conv_1.weight``, ``.shortcut.weight`` (first block of each group),
``batchnorm.*``, ``logits.weight``, ``logits.bias``.

The model takes [0, 1] inputs and normalizes inside ``forward`` with the data set's
mean/std, held as *non-persistent* buffers (absent from the state_dict, as in RobustBench,
where they are plain attributes). Activation: SiLU, which is RobustBench's ``Swish``
(x·sigmoid(x), a custom autograd function there) computed by PyTorch's fused kernel.
Strided 3x3 convs have no padding of their own: the input is padded (0, 1, 0, 1) first,
TensorFlow's "SAME" for stride 2; stride-1 convs get (1, 1, 1, 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import Tensor, nn

from advdistill.errors import RecipeError
from advdistill_plugins.models.common import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    DATASET_STATS,
    TimmFactory,
    check_stats,
    timm_cfg,
)
from advdistill_plugins.models.config import DMWideResNetConfig, DMWRN2810Config

#: the modules of config.ACTIVATION_NAMES, which the recipe is checked against (a test keeps them equal)
ACTIVATIONS: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "swish": nn.SiLU, "relu": nn.ReLU}


class DMBlock(nn.Module):
    """Pre-activation block: BN-act-pad-conv3x3(stride)-BN-act-conv3x3, identity or 1x1 shortcut."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, activation: type[nn.Module]) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"DMWideResNet blocks support stride 1 or 2, got {stride}")
        self.batchnorm_0 = nn.BatchNorm2d(in_planes)
        self.relu_0 = activation()
        self.conv_0 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=0, bias=False)
        self.batchnorm_1 = nn.BatchNorm2d(out_planes)
        self.relu_1 = activation()
        self.conv_1 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.has_shortcut = in_planes != out_planes
        self.shortcut = (
            nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False) if self.has_shortcut else None
        )
        self.pad = (1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1)

    def forward(self, x: Tensor) -> Tensor:
        act = self.relu_0(self.batchnorm_0(x))
        out = self.conv_0(F.pad(act, self.pad))
        out = self.conv_1(self.relu_1(self.batchnorm_1(out)))
        # with a width change the shortcut starts from the activated input, as in RobustBench
        return (self.shortcut(act) if self.has_shortcut else x) + out


class DMBlockGroup(nn.Module):
    """``n`` DMBlocks; only the first changes width/stride (key prefix ``block.``)."""

    def __init__(
        self, n: int, in_planes: int, out_planes: int, stride: int, activation: type[nn.Module]
    ) -> None:
        super().__init__()
        self.block = nn.Sequential(*[
            DMBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1, activation)
            for i in range(n)
        ])

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class DMWideResNet(nn.Module):
    """DeepMind WideResNet: (B, in_chans, 32, 32) in [0, 1] -> (B, num_classes) logits.

    :param padding: zero-pad the input by this many pixels first (RobustBench's option).
    """

    def __init__(
        self,
        num_classes: int = 10,
        depth: int = 28,
        width: int = 10,
        activation: str = "silu",
        mean: Sequence[float] = CIFAR10_MEAN,
        std: Sequence[float] = CIFAR10_STD,
        padding: int = 0,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"DMWideResNet depth must be 6n + 4 (e.g. 28, 70), got {depth}")
        act = ACTIVATIONS[activation]
        n = (depth - 4) // 6
        widths = [16, 16 * width, 32 * width, 64 * width]
        self.num_classes = num_classes
        self.register_buffer("mean", _stat(mean, in_chans), persistent=False)
        self.register_buffer("std", _stat(std, in_chans), persistent=False)
        self.padding = padding
        self.init_conv = nn.Conv2d(in_chans, widths[0], 3, stride=1, padding=1, bias=False)
        self.layer = nn.Sequential(
            DMBlockGroup(n, widths[0], widths[1], 1, act),
            DMBlockGroup(n, widths[1], widths[2], 2, act),
            DMBlockGroup(n, widths[2], widths[3], 2, act),
        )
        self.batchnorm = nn.BatchNorm2d(widths[3])
        self.relu = act()
        self.logits = nn.Linear(widths[3], num_classes)
        self.num_features = widths[3]

    def forward(self, x: Tensor) -> Tensor:
        if self.padding > 0:
            x = F.pad(x, (self.padding,) * 4)
        out = self.init_conv((x - self.mean) / self.std)
        out = self.relu(self.batchnorm(self.layer(out)))
        out = F.avg_pool2d(out, 8)
        return self.logits(out.reshape(-1, self.num_features))


def _stat(values: Sequence[float], in_chans: int) -> Tensor:
    t = torch.tensor([float(v) for v in values])
    return t.expand(in_chans).clone().view(1, in_chans, 1, 1) if t.numel() == 1 else t.view(1, -1, 1, 1)


default_cfgs = generate_default_cfgs({
    "adv_dm_wideresnet": timm_cfg(first_conv="init_conv", classifier="logits"),
    "adv_dm_wrn28_10": timm_cfg(first_conv="init_conv", classifier="logits"),
})


@register_model
def adv_dm_wideresnet(pretrained: bool = False, **kwargs) -> DMWideResNet:
    """RobustBench DMWideResNet(depth, width, activation, mean, std); default WRN-28-10, SiLU."""
    return build_model_with_cfg(DMWideResNet, "adv_dm_wideresnet", pretrained, **kwargs)


@register_model
def adv_dm_wrn28_10(pretrained: bool = False, **kwargs) -> DMWideResNet:
    """RobustBench DMWideResNet-28-10 with SiLU (BDM-AT, IKL-AT): 36,479,194 params for 10 classes."""
    return build_model_with_cfg(DMWideResNet, "adv_dm_wrn28_10", pretrained, **{"depth": 28, "width": 10,
                                                                                **kwargs})


def resolve_stats(
    mean: Sequence[float] | None, std: Sequence[float] | None, dataset: str | None, num_classes: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The normalization of a DMWideResNet: explicit mean/std, else the data set's, else by class count."""
    if mean is not None and std is not None:
        return tuple(mean), tuple(std)
    if dataset is None:
        dataset = {10: "cifar10", 100: "cifar100"}.get(num_classes)
        if dataset is None:
            raise RecipeError(
                f"dm_wideresnet: cannot tell which data set's mean/std to use for {num_classes} classes; "
                f"set dataset = one of {', '.join(map(repr, DATASET_STATS))}, or mean = [...] and std = [...]"
            )
    return DATASET_STATS[dataset]


class DMWRN2810(TimmFactory):
    """RobustBench DMWideResNet-28-10, SiLU, CIFAR mean/std inside (BDM-AT, IKL-AT): 36.5 M params."""

    Config = DMWRN2810Config
    variant = "adv_dm_wrn28_10"

    def model_args(self, num_classes, in_chans):
        cfg = self.config
        mean, std = resolve_stats(cfg.mean, cfg.std, cfg.dataset, num_classes)
        check_stats(mean, std, in_chans)
        return {"mean": mean, "std": std, "activation": cfg.activation, "padding": cfg.padding}

    def finish(self, model, in_chans):
        return model  # it normalizes by itself (mean/std went into model_args)


class DMWideResNetFactory(DMWRN2810):
    """RobustBench DMWideResNet of any depth (6n + 4) and width, e.g. ``depth = 70, width = 16``."""

    Config = DMWideResNetConfig
    variant = "adv_dm_wideresnet"

    def model_args(self, num_classes, in_chans):
        cfg = self.config
        return {**super().model_args(num_classes, in_chans), "depth": cfg.depth, "width": cfg.width}
