"""CIFAR-10/100 from the standard python-pickle layout on local disk."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from advdistill.errors import DataError
from advdistill.interfaces import DatasetInfo, DatasetSource, DataSplits
from advdistill_plugins.datasets.config import CIFARConfig
from advdistill_plugins.datasets.local_files import expand_root, missing_file

if TYPE_CHECKING:
    import torch

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class _CIFAR(DatasetSource):
    Config = CIFARConfig
    folder: str
    name: str
    num_classes: int
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: bytes
    url: str

    def directory(self) -> Path:
        root = expand_root(self.config.root)
        return root if root.name == self.folder else root / self.folder

    def _missing(self, path: Path) -> DataError:
        return missing_file(
            self.name, path, f"the python version of the data set, as extracted from {self.url}",
            f"download and extract it yourself into {self.directory().parent}, "
            f"or set [data] root to the directory that holds {self.folder}/",
        )

    def _require(self, path: Path) -> None:
        if not path.exists():
            raise self._missing(path)
        if not path.is_file():
            raise DataError(
                f"{path} is a directory, not a {self.name} batch file: {self.directory()} should hold the "
                f"files {', '.join(self.train_files + self.test_files)} as extracted from {self.url}."
            )

    def check_files(self) -> None:
        for name in self.train_files + self.test_files:
            self._require(self.directory() / name)

    def _read(self, names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch  # here, not at the top: `recipe check` reads this module without torch
        images, labels = [], []
        for name in names:
            path = self.directory() / name
            self._require(path)
            try:
                with open(path, "rb") as fh:
                    entry = pickle.load(fh, encoding="bytes")
                data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                label = np.asarray(entry[self.label_key], dtype=np.int64)
            except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
                raise DataError(f"{path} is not a valid {self.name} batch file ({type(exc).__name__}: {exc})") from None
            except OSError as exc:
                raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
            if label.shape[0] != data.shape[0] or label.min() < 0 or label.max() >= self.num_classes:
                raise DataError(f"{path}: labels do not match the images or lie outside 0..{self.num_classes - 1}")
            images.append(data)
            labels.append(label)
        return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))

    def load(self):
        train_x, train_y = self._read(self.train_files)
        test_x, test_y = self._read(self.test_files)
        info = DatasetInfo(self.name, self.num_classes, 3, (32, 32), self.class_names())
        return DataSplits(info, train_x, train_y, test_x, test_y)

    def class_names(self) -> tuple[str, ...]:
        return tuple(str(i) for i in range(self.num_classes))


class CIFAR10(_CIFAR):
    """CIFAR-10 (50,000 train / 10,000 test) from ``{root}/cifar-10-batches-py/``."""

    folder, name, num_classes = "cifar-10-batches-py", "cifar10", 10
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)
    label_key = b"labels"
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

    def class_names(self):
        return CIFAR10_CLASSES


class CIFAR100(_CIFAR):
    """CIFAR-100 (fine labels; 50,000 train / 10,000 test) from ``{root}/cifar-100-python/``."""

    folder, name, num_classes = "cifar-100-python", "cifar100", 100
    train_files = ("train",)
    test_files = ("test",)
    label_key = b"fine_labels"
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
