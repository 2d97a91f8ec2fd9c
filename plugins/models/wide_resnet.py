"""RobustBench's (TRADES-style) WideResNet: the LTD teacher ``Chen2021LTD_WRN34_10``.

Same layers, forward and initialisation as RobustBench ``architectures/wide_resnet.py``
(from github.com/yaodongyu/TRADES), and the same state_dict keys, so RobustBench
checkpoints load with ``strict=True``:

``conv1.weight``, ``block{1,2,3}.layer.{i}.bn1.*``, ``.conv1.weight``, ``.bn2.*``,
``.conv2.weight``, ``.convShortcut.weight`` (first layer of a block whose width changes),
``bn1.*``, ``fc.weight``, ``fc.bias``; with ``sub_block1=True`` also ``sub_block1.layer.*``,
a copy of block 1 that ``forward`` never uses (some checkpoints, e.g. CIFAR-100 LTD, carry it).

No normalization inside: these models take [0, 1] inputs directly. Pre-activation blocks
with ReLU; when a block changes width, both the residual branch and the 1x1 shortcut start
from the *activated* input.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import Tensor, nn

from advdistill_plugins.models.common import TimmFactory, timm_cfg
from advdistill_plugins.models.config import WideResNetConfig, WRN3410Config


class WideBasicBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3 plus an identity or 1x1-conv shortcut."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.equal_in_out = in_planes == out_planes
        # RobustBench: a shortcut conv exactly when the width changes (never for stride alone)
        self.convShortcut = (
            None if self.equal_in_out else nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        act = F.relu(self.bn1(x))
        out = F.relu(self.bn2(self.conv1(act)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        return (x if self.convShortcut is None else self.convShortcut(act)) + out


class NetworkBlock(nn.Module):
    """``n`` WideBasicBlocks; only the first changes width/stride (key prefix ``layer.``)."""

    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.layer = nn.Sequential(*[
            WideBasicBlock(out_planes if i else in_planes, out_planes, 1 if i else stride, drop_rate)
            for i in range(n)
        ])

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-depth-widen_factor for 32x32 inputs: (B, in_chans, 32, 32) in [0, 1] -> (B, C) logits."""

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        num_classes: int = 10,
        sub_block1: bool = False,
        drop_rate: float = 0.0,
        bias_last: bool = True,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n + 4 (e.g. 28, 34), got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, widths[0], widths[1], 1, drop_rate)
        if sub_block1:
            self.sub_block1 = NetworkBlock(n, widths[0], widths[1], 1, drop_rate)
        self.block2 = NetworkBlock(n, widths[1], widths[2], 2, drop_rate)
        self.block3 = NetworkBlock(n, widths[2], widths[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes, bias=bias_last)
        self.num_features = widths[3]
        for m in self.modules():  # RobustBench/TRADES initialisation
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn1(out))
        out = F.avg_pool2d(out, 8)
        return self.fc(out.reshape(-1, self.num_features))


default_cfgs = generate_default_cfgs({
    "adv_wideresnet": timm_cfg(first_conv="conv1", classifier="fc"),
    "adv_wrn34_10": timm_cfg(first_conv="conv1", classifier="fc"),
})


@register_model
def adv_wideresnet(pretrained: bool = False, **kwargs) -> WideResNet:
    """RobustBench WideResNet(depth, widen_factor, sub_block1, ...); default WRN-28-10."""
    return build_model_with_cfg(WideResNet, "adv_wideresnet", pretrained, **kwargs)


@register_model
def adv_wrn34_10(pretrained: bool = False, **kwargs) -> WideResNet:
    """RobustBench WRN-34-10 (LTD teacher): 46,160,474 parameters for 10 classes."""
    return build_model_with_cfg(WideResNet, "adv_wrn34_10", pretrained, **{"depth": 34, "widen_factor": 10,
                                                                           **kwargs})


class WRN3410(TimmFactory):
    """RobustBench WideResNet-34-10 (TRADES style, LTD teacher): 46.2 M params for 10 classes."""

    Config = WRN3410Config
    variant = "adv_wrn34_10"

    def model_args(self, num_classes, in_chans):
        cfg = self.config
        return {"sub_block1": cfg.sub_block1, "drop_rate": cfg.drop_rate, "bias_last": cfg.bias_last}


class WideResNetFactory(WRN3410):
    """RobustBench WideResNet of any depth (6n + 4) and width: ``depth = 28, widen_factor = 10``."""

    Config = WideResNetConfig
    variant = "adv_wideresnet"

    def model_args(self, num_classes, in_chans):
        return {**super().model_args(num_classes, in_chans), "depth": self.config.depth,
                "widen_factor": self.config.widen_factor}
