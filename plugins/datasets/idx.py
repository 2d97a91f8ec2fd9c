"""MNIST and Fashion-MNIST from the standard idx files on local disk (raw or gzipped)."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from advdistill.errors import DataError
from advdistill.interfaces import DatasetInfo, DatasetSource, DataSplits
from advdistill_plugins.datasets.config import IdxConfig

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
#: idx magic numbers: unsigned bytes (0x08) with 3 dimensions (images) or 1 (labels)
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
NUM_CLASSES = 10


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(
            f"{path} cannot be read ({type(exc).__name__}: {exc}); the file is truncated or corrupt"
        ) from None


@lru_cache(maxsize=8)
def _read_idx(path: Path, _stamp: tuple[int, int], magic: int) -> np.ndarray:
    # _stamp (size, mtime) makes a changed file a new cache entry
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: {len(data)} bytes, shorter than an idx header; the file is truncated or corrupt")
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        kind = "images (idx3)" if magic == IMAGES_MAGIC else "labels (idx1)"
        raise DataError(
            f"{path}: magic number 0x{found:08x}, expected 0x{magic:08x} for unsigned-byte {kind}; "
            "not an idx file of this kind"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(
            f"{path}: the header promises {' x '.join(map(str, dims))} bytes of data ({expected} bytes in all), "
            f"the file has {len(data)}: it is {state}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


class _Idx(DatasetSource):
    Config = IdxConfig
    name: str
    folder: str
    origin: str

    def directory(self) -> Path:
        root = Path(os.path.expandvars(os.path.expanduser(self.config.root)))
        holds_files = any(root.glob("train-images-idx3-ubyte*"))
        return root if holds_files or root.name == self.folder else root / self.folder

    def _file(self, stem: str) -> Path:
        folder = self.directory()
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
        expected = ", ".join(f"{split}-{kind}-ubyte[.gz]" for split in ("train", "t10k")
                             for kind in ("images-idx3", "labels-idx1"))
        raise DataError(
            f"{self.name}: {folder / stem}[.gz] not found. Expected the four idx files {expected} in {folder} "
            f"(or set [data] root to the directory that holds them). They come from {self.origin}. "
            "Nothing is downloaded at run time."
        )

    def _read(self, stem: str, magic: int) -> np.ndarray:
        path = self._file(stem)
        stat = path.stat()
        return _read_idx(path.resolve(), (stat.st_size, stat.st_mtime_ns), magic)

    def _split(self, prefix: str) -> tuple[np.ndarray, np.ndarray]:
        images = self._read(f"{prefix}-images-idx3-ubyte", IMAGES_MAGIC)
        labels = self._read(f"{prefix}-labels-idx1-ubyte", LABELS_MAGIC)
        where = self._file(f"{prefix}-labels-idx1-ubyte")
        if labels.shape[0] != images.shape[0]:
            raise DataError(f"{where}: {labels.shape[0]} labels for {images.shape[0]} images")
        if labels.size and labels.max() >= NUM_CLASSES:
            raise DataError(f"{where}: labels outside 0..{NUM_CLASSES - 1} (found {int(labels.max())})")
        return images, labels.astype(np.int64)

    def check_files(self) -> None:
        for prefix in ("train", "t10k"):  # the order load() reads them in: the same first error
            for stem in ("images-idx3", "labels-idx1"):
                self._file(f"{prefix}-{stem}-ubyte")

    def load(self) -> DataSplits:
        import torch  # here, not at the top: `recipe check` reads this module without torch

        from advdistill.val_split import validation_indices

        train_x, train_y = self._split("train")
        test_x, test_y = self._split("t10k")
        if train_x.shape[1:] != test_x.shape[1:]:
            raise DataError(
                f"{self.directory()}: training images are {train_x.shape[1:]}, test images {test_x.shape[1:]}"
            )
        subset = self.config.train_subset
        if subset is not None:
            if subset > train_x.shape[0]:
                raise DataError(
                    f"{self.name}: [data] train_subset = {subset} exceeds the {train_x.shape[0]} training images"
                )
            # the validation split's class-stratified draw (largest-remainder shares), kept in file order
            keep = validation_indices(torch.from_numpy(train_y), subset, self.config.subset_seed).sort().values.numpy()
            train_x, train_y = train_x[keep], train_y[keep]
        h, w = train_x.shape[1:]
        info = DatasetInfo(self.name, NUM_CLASSES, 1, (h, w), self.class_names)
        return DataSplits(
            info,
            torch.from_numpy(train_x.reshape(-1, 1, h, w).copy()), torch.from_numpy(train_y.copy()),
            torch.from_numpy(test_x.reshape(-1, 1, h, w).copy()), torch.from_numpy(test_y.copy()),
        )


class MNIST(_Idx):
    """MNIST (60,000 train / 10,000 test, 1×28×28) from the four idx files in ``{root}[/mnist]``."""

    name, folder = "mnist", "mnist"
    origin = "http://yann.lecun.com/exdb/mnist/ (or any mirror of it)"
    class_names = tuple(str(i) for i in range(NUM_CLASSES))


class FashionMNIST(_Idx):
    """Fashion-MNIST (60,000 train / 10,000 test, 1×28×28) from the idx files in ``{root}[/fashion-mnist]``."""

    name, folder = "fashion_mnist", "fashion-mnist"
    origin = (
        "https://github.com/zalandoresearch/fashion-mnist (on Debian/Ubuntu: `apt-get install "
        "dataset-fashion-mnist` puts them in /usr/share/datasets/fashion-mnist)"
    )
    class_names = FASHION_CLASSES
