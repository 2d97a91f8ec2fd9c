"""Tiny-ImageNet (200 classes, 64x64) from the standard ``tiny-imagenet-200/`` folder, decoded once.

The archive's ``test/`` images carry no labels, so the labelled ``val/`` split (50 images per
class) is the test split, as in the robust-training literature. Decoding the 110,000 JPEGs
takes about a minute (PIL, one core); the decoded uint8 tensors are cached in one safetensors
file beside the folder and reused while the folder is unchanged (same files, sizes and mtimes).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from attrs import define

from advdistill.errors import DataError
from advdistill.interfaces import DatasetInfo, DatasetSource, DataSplits
from advdistill_plugins.datasets.config import TinyImageNetConfig
from advdistill_plugins.datasets.local_files import expand_root, missing_file

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
FOLDER = "tiny-imagenet-200"
NUM_CLASSES = 200
SIZE = 64
#: per class in the official archive; fewer is allowed (subsets) but announced
TRAIN_PER_CLASS, VAL_PER_CLASS = 500, 50
#: bump when the cached tensors change meaning, so that old cache files are rebuilt
CACHE_FORMAT = "1"
CACHE_NAME = f"{FOLDER}.advdistill-cache.safetensors"


@define(frozen=True)
class Layout:
    """The image files of one ``tiny-imagenet-200/`` folder, checked, in a fixed order."""

    wnids: tuple[str, ...]  # sorted: the label of a class is its position (torchvision ImageFolder's order)
    train: list[tuple[str, int]]  # (path, label); plain strings: pathlib costs more than the stat per file
    test: list[tuple[str, int]]  # the labelled val/ split, in val_annotations.txt's order
    fingerprint: str  # changes whenever a file is added, removed, resized or touched


class _Listing:
    """Files seen while scanning, with their size and mtime, for the cache fingerprint."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(f"format {CACHE_FORMAT}\n".encode())

    def add(self, relative: str, stat: os.stat_result) -> None:
        # relative paths: a folder moved with its mtimes (mv, cp -a) keeps its cache
        self._hash.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _require(path: Path, directory: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:
        raise missing_file(
            "tiny_imagenet", path, f"part of {TINY_URL}",
            f"the folder {directory} looks incomplete; extract the archive again",
        ) from None


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a text file ({exc}); extract {TINY_URL} again") from None


def _jpegs(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        found = [e for e in entries if e.is_file() and e.name.lower().endswith((".jpeg", ".jpg"))]
    return sorted(found, key=lambda e: e.name)


def _few(names: Sequence[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def check_layout(directory: Path) -> None:
    """The folder and its index files exist (what `recipe check` looks at; :func:`scan` checks every image)."""
    if not directory.is_dir():
        raise missing_file(
            "tiny_imagenet", directory, f"the folder extracted from {TINY_URL}",
            f"download and extract it yourself into {directory.parent}, "
            f"or set [data] root to the directory that holds {FOLDER}/",
        )
    for relative in ("wnids.txt", "train", "val/val_annotations.txt", "val/images"):
        _require(directory / relative, directory)


def scan(directory: Path) -> Layout:
    """Check the folder layout and list every image with its label; raise DataError on any gap."""
    check_layout(directory)
    listing = _Listing()
    wnids_file = directory / "wnids.txt"
    listing.add("wnids.txt", _require(wnids_file, directory))
    listed = [line.strip() for line in _lines(wnids_file) if line.strip()]
    wnids = tuple(sorted(set(listed)))
    if len(listed) != len(wnids) or len(wnids) != NUM_CLASSES:
        raise DataError(
            f"{wnids_file} lists {len(listed)} class ids ({len(wnids)} distinct); Tiny-ImageNet has "
            f"{NUM_CLASSES}. Extract {TINY_URL} again."
        )
    label = {wnid: i for i, wnid in enumerate(wnids)}

    train_dir = directory / "train"
    _require(train_dir, directory)
    with os.scandir(train_dir) as entries:
        folders = {e.name for e in entries if e.is_dir()}
    unknown = sorted(folders - set(wnids))
    if unknown:
        raise DataError(f"class count mismatch: {train_dir} has folders that {wnids_file} does not list: "
                        f"{_few(unknown)}")
    train: list[tuple[str, int]] = []
    empty = []
    for wnid in wnids:
        images = train_dir / wnid / "images"
        found = _jpegs(images) if images.is_dir() else []
        if not found:
            empty.append(wnid)
        for entry in found:
            listing.add(f"train/{wnid}/images/{entry.name}", entry.stat())
            train.append((entry.path, label[wnid]))
    if empty:
        raise DataError(
            f"class count mismatch: {wnids_file} lists {NUM_CLASSES} classes, but {len(empty)} have no "
            f"images in {train_dir}/<class id>/images/ ({_few(empty)}); a partial extraction? "
            f"Extract {TINY_URL} again."
        )

    annotations = directory / "val" / "val_annotations.txt"
    listing.add("val/val_annotations.txt", _require(annotations, directory))
    val_images = directory / "val" / "images"
    _require(val_images, directory)
    on_disk = {entry.name: entry for entry in _jpegs(val_images)}
    test: list[tuple[str, int]] = []
    absent = []
    for number, line in enumerate(_lines(annotations), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in label:
            raise DataError(
                f"{annotations} line {number}: expected '<file>\\t<class id listed in wnids.txt>\\t...', "
                f"got {line[:80]!r}"
            )
        entry = on_disk.get(fields[0])
        if entry is None:
            absent.append(fields[0])
            continue
        listing.add(f"val/images/{entry.name}", entry.stat())
        test.append((entry.path, label[fields[1]]))
    if absent:
        raise DataError(f"{val_images} lacks {len(absent)} images that {annotations} lists ({_few(absent)}); "
                        f"a partial extraction? Extract {TINY_URL} again.")
    if len(train) != NUM_CLASSES * TRAIN_PER_CLASS or len(test) != NUM_CLASSES * VAL_PER_CLASS:
        log.warning("%s holds %d training and %d validation images; the official archive has %d and %d",
                    directory, len(train), len(test), NUM_CLASSES * TRAIN_PER_CLASS, NUM_CLASSES * VAL_PER_CLASS)
    return Layout(wnids, train, test, listing.hexdigest())


def decode(files: Sequence[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Decode JPEGs into uint8 (N, 3, 64, 64) RGB (the few grayscale images are converted) and int64 labels."""
    from PIL import Image, UnidentifiedImageError

    images = np.empty((len(files), 3, SIZE, SIZE), dtype=np.uint8)
    labels = np.fromiter((label for _, label in files), dtype=np.int64, count=len(files))
    for i, (path, _) in enumerate(files):
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"{path} is not a readable JPEG ({type(exc).__name__}: {exc}); "
                            f"extract {TINY_URL} again") from None
        if pixels.shape != (SIZE, SIZE, 3):
            raise DataError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]} pixels; Tiny-ImageNet images are "
                            f"{SIZE}x{SIZE}")
        images[i] = pixels.transpose(2, 0, 1)
    return images, labels


_KEYS = {"train_x": (3, SIZE, SIZE), "train_y": (), "test_x": (3, SIZE, SIZE), "test_y": ()}


def read_cache(path: Path, layout: Layout) -> dict[str, torch.Tensor] | None:
    """The cached tensors if ``path`` was written for this exact folder content, else None."""
    import torch  # here, not at the top: `recipe check` reads this module without torch
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    if not path.exists():
        return None
    try:
        with safe_open(str(path), "pt") as fh:
            fingerprint = (fh.metadata() or {}).get("fingerprint")
        if fingerprint != layout.fingerprint:
            log.info("%s was built from another state of the folder; rebuilding it", path)
            return None
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        log.warning("ignoring the unreadable cache %s (%s: %s); rebuilding it", path, type(exc).__name__, exc)
        return None
    sizes = {"train": len(layout.train), "test": len(layout.test)}
    for key, shape in _KEYS.items():
        t = tensors.get(key)
        expected = (sizes[key[:-2]], *shape)
        if t is None or tuple(t.shape) != expected or t.dtype != (torch.uint8 if shape else torch.int64):
            log.warning("ignoring the cache %s: %s is not %s; rebuilding it", path, key, expected)
            return None
    return tensors


def write_cache(path: Path, tensors: dict[str, torch.Tensor], layout: Layout) -> None:
    """Write the cache atomically; a directory we cannot write to only costs the next run the decoding."""
    from safetensors.torch import save_file

    from advdistill.io import atomic_write

    metadata = {"fingerprint": layout.fingerprint, "format": CACHE_FORMAT, "dataset": "tiny_imagenet"}
    try:
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    except OSError as exc:
        log.warning("could not write the Tiny-ImageNet cache %s (%s); the next run decodes the JPEGs again. "
                    "Set [data] cache_dir to a writable directory.", path, exc.strerror or exc)


class TinyImageNet(DatasetSource):
    """Tiny-ImageNet, 3x64x64, 200 classes: 100,000 train / 10,000 test (the labelled val split).

    Reads ``{root}/tiny-imagenet-200/`` (``wnids.txt``, ``train/<wnid>/images/*.JPEG``,
    ``val/images/`` + ``val/val_annotations.txt``); labels follow the sorted class ids.
    """

    Config = TinyImageNetConfig

    def directory(self) -> Path:
        root = expand_root(self.config.root)
        return root if root.name == FOLDER else root / FOLDER

    def cache_path(self) -> Path:
        folder = self.directory()
        base = expand_root(self.config.cache_dir) if self.config.cache_dir else folder.parent
        return base / CACHE_NAME

    def check_files(self) -> None:
        check_layout(self.directory())

    def load(self):
        import torch  # here, not at the top: `recipe check` reads this module without torch
        layout = scan(self.directory())
        tensors = read_cache(self.cache_path(), layout) if self.config.cache else None
        if tensors is None:
            log.info("decoding %d Tiny-ImageNet JPEGs (done once while the folder is unchanged)",
                     len(layout.train) + len(layout.test))
            train_x, train_y = decode(layout.train)
            test_x, test_y = decode(layout.test)
            tensors = {"train_x": torch.from_numpy(train_x), "train_y": torch.from_numpy(train_y),
                       "test_x": torch.from_numpy(test_x), "test_y": torch.from_numpy(test_y)}
            if self.config.cache:
                write_cache(self.cache_path(), tensors, layout)
        info = DatasetInfo("tiny_imagenet", NUM_CLASSES, 3, (SIZE, SIZE), layout.wnids)
        return DataSplits(info, tensors["train_x"], tensors["train_y"], tensors["test_x"], tensors["test_y"])
