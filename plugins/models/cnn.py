"""A small VGG-style CNN: fast enough on 2 CPU cores for the demo and the tests."""

from __future__ import annotations

from torch import nn

from advdistill.interfaces import ModelFactory
from advdistill_plugins.models.common import with_normalization
from advdistill_plugins.models.config import SmallCNNConfig


class SmallCNN(nn.Module):
    """[conv-ReLU-conv-ReLU-maxpool] per width, adaptive 4x4 pooling, then an MLP head."""

    def __init__(self, num_classes: int, in_chans: int, widths: tuple[int, ...], hidden: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * 16, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.head(self.pool(self.features(x)))


class SmallCNNFactory(ModelFactory):
    """Small VGG-style CNN; ``widths = [32, 64]`` has ~0.2 M parameters for 10 classes."""

    Config = SmallCNNConfig

    def build(self, num_classes, in_chans):
        cfg = self.config
        model = SmallCNN(num_classes, in_chans, cfg.widths, cfg.hidden)
        return with_normalization(model, cfg, in_chans)
