"""Synthetic images for tests and benchmarks: learnable, tiny, generated from a seed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from advdistill.interfaces import DatasetInfo, DatasetSource, DataSplits
from advdistill_plugins.datasets.config import SyntheticConfig

if TYPE_CHECKING:
    import torch


class Synthetic(DatasetSource):
    """Each class is a fixed random pattern plus noise: learnable in a few steps. Not real data.

    No validation split unless the recipe asks for one (``[data] val_size``): its sizes are
    tiny and chosen per test.
    """

    Config = SyntheticConfig
    default_val_size = 0

    def load(self):
        import torch  # here, not at the top: `recipe check` reads this module without torch
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
