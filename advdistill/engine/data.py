"""In-memory batching and augmentation on the training device.

The small image data sets this project trains on (CIFAR, MNIST) fit in device memory as
uint8; shuffling and augmenting there avoids DataLoader workers and host copies, and a
per-epoch seed makes the order reproducible, so a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A deterministic 63-bit seed for one (run seed, epoch, random stream)."""
    return (seed * 1_000_003 + epoch * 7_919 + stream * 104_729) % (2**63 - 1)


def random_crop(x: Tensor, padding: int, generator: torch.Generator) -> Tensor:
    """Zero-pad by ``padding`` and crop back at a random offset per image (RandomCrop(pad))."""
    if padding == 0:
        return x
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def random_flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Flip each image horizontally with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


class InMemoryLoader:
    """Batches of (images in [0, 1] float32, labels) from uint8 tensors kept on ``device``.

    :param shuffle: reshuffle every epoch (call :meth:`set_epoch` first).
    :param rank: / :param world_size: shard each epoch's order across processes.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        *,
        batch_size: int,
        device: torch.device,
        shuffle: bool = False,
        drop_last: bool = False,
        augment: str = "none",
        crop_padding: int = 4,
        seed: int = 0,
        limit: int | None = None,
        channels_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        self.images = images.to(device)
        self.labels = labels.to(device, dtype=torch.long)
        self.batch_size, self.device = batch_size, device
        self.shuffle, self.drop_last = shuffle, drop_last
        self.augment, self.crop_padding = augment, crop_padding
        self.seed, self.epoch = seed, 1
        self.channels_last = channels_last
        self.rank, self.world_size = rank, world_size
        self._generator = torch.Generator(device=device)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> Tensor:
        n = self.images.shape[0]
        if self.shuffle:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, 0))
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.world_size > 1:  # equal shard sizes so that every rank runs the same steps
            per_rank = n // self.world_size
            order = order[: per_rank * self.world_size][self.rank :: self.world_size]
        return order.to(self.device)

    def __len__(self) -> int:
        n = self.images.shape[0] // self.world_size if self.world_size > 1 else self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self._indices()
        self._generator.manual_seed(epoch_seed(self.seed, self.epoch, 1))
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.images[idx].float().div_(255.0)
            if self.augment in ("crop", "crop_flip"):
                x = random_crop(x, self.crop_padding, self._generator)
            if self.augment in ("flip", "crop_flip"):
                x = random_flip(x, self._generator)
            # the crop's gather leaves a channels-last layout: the batch must have the model's own
            # layout, else conv weight gradients come out in another one than DDP's buckets
            # ("Grad strides do not match bucket view strides"), and on the CPU torch 2.14's
            # backward of a channels-last 1x1 stride-2 convolution corrupts memory (crashes seen)
            memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
            yield x.contiguous(memory_format=memory_format), self.labels[idx]
