"""The validation split: training images held out for choosing checkpoints, never trained on.

``[data] val_size`` images are taken out of the data set's *training* split, class-stratified
(each class contributes in proportion to its share of the training images; the rounding is by
largest remainder, so the counts add up to exactly ``val_size``), chosen by ``[data] val_seed``
alone (not ``train.seed``: runs with different training seeds share one validation split).
The training images keep their order, so ``val_size = 0`` trains on exactly what the data set
returned. The test split is untouched: it is read only by the final evaluation.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor

from advdistill.errors import RecipeError, TrainingError
from advdistill.interfaces import DataSplits


def stratified_counts(labels: Tensor, val_size: int) -> dict[int, int]:
    """How many images of each class go to the validation split: ``{label: count}``.

    Class c with n_c of the N images gets ⌊val_size·n_c/N⌋, and the images still missing go one
    each to the classes with the largest remainders (val_size·n_c mod N), ties to the smaller
    label. Exact integer arithmetic: the counts always sum to ``val_size``.
    """
    classes, sizes = torch.unique(labels, return_counts=True)
    n = int(labels.numel())
    sizes = [int(s) for s in sizes]
    counts = [val_size * s // n for s in sizes]
    remainders = [val_size * s % n for s in sizes]
    missing = val_size - sum(counts)  # < number of classes: each remainder is < N
    for i in sorted(range(len(sizes)), key=lambda i: (-remainders[i], i))[:missing]:
        counts[i] += 1
    return {int(c): k for c, k in zip(classes.tolist(), counts)}


def validation_indices(labels: Tensor, val_size: int, seed: int) -> Tensor:
    """Positions (int64) of the validation images among the training images.

    Per class (ascending label) a random permutation of its images from one generator seeded
    with ``seed``, of which the first :func:`stratified_counts` are taken; the result is
    shuffled once more, so that any prefix mixes the classes (``periodic_eval``'s ``limit``).
    """
    labels = labels.cpu()
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label, count in sorted(stratified_counts(labels, val_size).items()):
        members = torch.nonzero(labels == label).flatten()
        chosen.append(members[torch.randperm(members.numel(), generator=generator)[:count]])
    picked = torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.long)
    return picked[torch.randperm(picked.numel(), generator=generator)]


def hold_out_validation(splits: DataSplits, val_size: int, seed: int, *, dataset: str = "") -> DataSplits:
    """``splits`` with ``val_size`` training images moved to ``val_x``/``val_y`` (see the module)."""
    n_train = int(splits.train_y.shape[0])
    if val_size >= n_train:
        suggestion = max(n_train // 10, 1) if n_train > 1 else 0
        raise RecipeError(
            f"[data] val_size = {val_size} leaves no training image: data set {dataset!r} has {n_train} "
            f"training images. Hold out fewer (e.g. --set data.val_size={suggestion}), or set "
            "data.val_size = 0 for no validation split."
        )
    if val_size == 0:  # no copy of the training images
        return attrs.evolve(splits, val_x=splits.train_x[:0], val_y=splits.train_y[:0])
    index = validation_indices(splits.train_y, val_size, seed)
    keep = torch.ones(n_train, dtype=torch.bool)
    keep[index] = False
    return attrs.evolve(
        splits, train_x=splits.train_x[keep], train_y=splits.train_y[keep],
        val_x=splits.train_x[index], val_y=splits.train_y[index],
    )


def require_val(run: Any, callback: str) -> None:
    """Stop with a clear error when a run has no validation split (``[data] val_size = 0``)."""
    if run.data.n_val == 0:
        raise TrainingError(
            f"callback {callback!r} evaluates on the validation split, but the run has none "
            "([data] val_size = 0); set data.val_size, or remove the callback"
        )


class WithheldSplit:
    """Stands in for the test split where it must not be read (the callbacks of a training run)."""

    MESSAGE = (
        "the test split is not available during training: callbacks see the training and validation "
        "splits (run.data.train_x, run.data.val_x); only the final evaluation reads the test images"
    )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy/pickle probes must see an ordinary object
            raise AttributeError(name)
        raise TrainingError(self.MESSAGE)

    def __getitem__(self, item: Any) -> Any:
        raise TrainingError(self.MESSAGE)

    def __len__(self) -> int:
        raise TrainingError(self.MESSAGE)

    def __iter__(self) -> Any:
        raise TrainingError(self.MESSAGE)

    def __repr__(self) -> str:
        return "<test split withheld during training>"


def without_test(splits: DataSplits) -> DataSplits:
    """``splits`` with the test split replaced by :class:`WithheldSplit` (what callbacks get)."""
    return attrs.evolve(splits, test_x=WithheldSplit(), test_y=WithheldSplit())
