"""SVHN (cropped digits, "format 2") from the standard ``*_32x32.mat`` files on local disk."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from advdistill.errors import DataError
from advdistill.interfaces import DatasetInfo, DatasetSource, DataSplits
from advdistill_plugins.datasets.config import SVHNConfig
from advdistill_plugins.datasets.local_files import expand_root, missing_file

SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN ``.mat`` file as uint8 images (N, 3, 32, 32) and int64 labels 0..9 (N,).

    The file (MATLAB level 5) holds ``X``: 32x32x3xN uint8 (row, column, channel, image) and
    ``y``: Nx1 labels 1..10, where 10 is the digit 0.
    """
    try:
        from scipy.io import loadmat
        from scipy.io.matlab import MatReadError
    except ImportError:  # scipy comes with advdistill's dependencies; this is a broken install
        raise DataError("reading SVHN's .mat files needs scipy: pip install scipy") from None
    try:
        mat = loadmat(path, variable_names=("X", "y"))
    except NotImplementedError:  # scipy's answer to a v7.3 (HDF5) file
        raise DataError(
            f"{path} is a MATLAB v7.3 (HDF5) file; SVHN's files are MATLAB v5: use the files from {SVHN_URL}"
        ) from None
    except (MatReadError, OSError, ValueError, TypeError, zlib.error) as exc:
        raise DataError(
            f"{path} is not a readable SVHN .mat file ({type(exc).__name__}: {exc}); "
            f"a truncated download? Download it again from {SVHN_URL}"
        ) from None
    missing = [name for name in ("X", "y") if name not in mat]
    if missing:
        raise DataError(
            f"{path} has no variable {' or '.join(map(repr, missing))}; an SVHN format-2 file holds "
            "X (32x32x3xN uint8 images) and y (Nx1 labels 1..10)"
        )
    images, labels = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: X is {images.dtype} of shape {images.shape}; expected uint8 of shape 32x32x3xN")
    if labels.shape[0] != images.shape[3]:
        raise DataError(f"{path}: {labels.shape[0]} labels for {images.shape[3]} images")
    if not np.isin(labels, np.arange(11)).all():
        raise DataError(f"{path}: labels must be 1..10 (10 is the digit 0), got values outside that range")
    labels = labels.astype(np.int64)
    labels[labels == 10] = 0
    return np.ascontiguousarray(images.transpose(3, 2, 0, 1)), labels


class SVHN(DatasetSource):
    """SVHN digits, 3x32x32: 73,257 train / 26,032 test (+ 531,131 extra with ``use_extra``).

    Reads ``train_32x32.mat`` and ``test_32x32.mat`` (and ``extra_32x32.mat``) from
    ``{root}/svhn/`` or from ``{root}`` itself; labels are the digits 0..9.
    """

    Config = SVHNConfig

    def directory(self) -> Path:
        root = expand_root(self.config.root)
        if root.name == "svhn" or (root / FILES["train"]).exists():
            return root
        return root / "svhn"

    def _path(self, split: str) -> Path:
        folder = self.directory()
        path = folder / FILES[split]
        if not path.exists():
            raise missing_file(
                "svhn", path, f"the cropped-digits file {FILES[split]} from {SVHN_URL}",
                f"download it yourself into {folder} (or into the directory [data] root names)",
            )
        return path

    def check_files(self) -> None:
        for split in ("train", "extra", "test") if self.config.use_extra else ("train", "test"):
            self._path(split)

    def _read(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return read_mat(self._path(split))

    def load(self):
        import torch  # here, not at the top: `recipe check` reads this module without torch
        train_x, train_y = self._read("train")
        if self.config.use_extra:
            extra_x, extra_y = self._read("extra")
            train_x, train_y = np.concatenate([train_x, extra_x]), np.concatenate([train_y, extra_y])
        test_x, test_y = self._read("test")
        info = DatasetInfo("svhn", 10, 3, (32, 32), tuple(str(i) for i in range(10)))
        return DataSplits(info, torch.from_numpy(train_x), torch.from_numpy(train_y),
                          torch.from_numpy(test_x), torch.from_numpy(test_y))
