"""What a metric plugin receives: the model under test, its teacher, and the test data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from attrs import define, field
from torch import Tensor, nn

from advdistill.engine.data import InMemoryLoader


@define(kw_only=True)
class EvalContext:
    """The model under evaluation (eval mode, frozen) and its test data.

    :ivar model: maps images in [0, 1] to logits.
    :ivar teacher: the recipe's teacher (frozen) or None.
    :ivar recipe: the resolved recipe, when known (metrics such as ``pointwise`` read its attack).
    :ivar run_dirs: other runs, for metrics that compare (unused by most).
    """

    model: nn.Module
    images: Tensor  # uint8 (N, C, H, W)
    labels: Tensor  # int64 (N,)
    device: torch.device
    batch_size: int = 256
    teacher: nn.Module | None = None
    recipe: Any = None
    seed: int = 0
    show_progress: bool = True
    label: str = ""
    extras: dict[str, Any] = field(factory=dict)

    @property
    def n_examples(self) -> int:
        return int(self.images.shape[0])

    def generator(self, stream: int = 0) -> torch.Generator:
        """A fresh generator on the device, seeded from the context's seed and ``stream``."""
        return torch.Generator(device=self.device).manual_seed(self.seed * 1_000_003 + stream)

    def batches(self, desc: str | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """Test batches (float images in [0, 1], labels) on the device, in a fixed order."""
        loader = InMemoryLoader(self.images, self.labels, batch_size=self.batch_size, device=self.device)
        if self.show_progress:
            from tqdm.auto import tqdm

            # disable=None: no bar when stderr is not a terminal (CI logs, pipes)
            yield from tqdm(loader, desc=desc or self.label or "eval", leave=False, unit="batch", disable=None)
        else:
            yield from loader
