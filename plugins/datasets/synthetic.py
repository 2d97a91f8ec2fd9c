"""Synthetic images for tests and benchmarks: learnable, tiny, generated from a seed."""

from __future__ import annotations

import torch
from attrs import define, field

from advdistill.config import integer, valid_seed
from advdistill.interfaces import DatasetInfo, DatasetSource, DataSplits


@define(frozen=True, kw_only=True)
class SyntheticConfig:
    #: training images
    n_train: int = field(default=256, validator=integer(1))
    #: test images
    n_test: int = field(default=64, validator=integer(1))
    #: classes (each a fixed random pattern plus noise)
    num_classes: int = field(default=10, validator=integer(2))
    #: image channels
    in_chans: int = field(default=3, validator=integer(1))
    #: image height and width in pixels
    image_size: int = field(default=32, validator=integer(4))
    #: seeds the patterns, the noise and the labels
    seed: int = field(default=0, validator=valid_seed)


class Synthetic(DatasetSource):
    """Each class is a fixed random pattern plus noise: learnable in a few steps. Not real data.

    No validation split unless the recipe asks for one (``[data] val_size``): its sizes are
    tiny and chosen per test.
    """

    Config = SyntheticConfig
    default_val_size = 0

    def load(self):
        c = self.config
        g = torch.Generator().manual_seed(c.seed)
        shape = (c.in_chans, c.image_size, c.image_size)
        prototypes = torch.rand((c.num_classes, *shape), generator=g)

        def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.randint(0, c.num_classes, (n,), generator=g)
            x = 0.6 * prototypes[y] + 0.4 * torch.rand((n, *shape), generator=g)
            return (x * 255).round().to(torch.uint8), y

        train_x, train_y = split(c.n_train)
        test_x, test_y = split(c.n_test)
        info = DatasetInfo("synthetic", c.num_classes, c.in_chans, (c.image_size, c.image_size))
        return DataSplits(info, train_x, train_y, test_x, test_y)
