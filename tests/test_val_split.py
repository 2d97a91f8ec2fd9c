"""The validation split: stratified counts (largest remainder), disjoint from training, fixed by its seed."""

import pytest
import torch

from advdistill.errors import RecipeError, TrainingError
from advdistill.interfaces import DatasetInfo, DataSplits
from advdistill.val_split import hold_out_validation, stratified_counts, validation_indices, without_test


def labels_with(counts):
    """Labels with ``counts[c]`` images of class c, interleaved (not sorted by class)."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return labels[torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(5))]


@pytest.mark.parametrize(("counts", "val_size", "expected"), [
    # quotas 4·(5, 3, 2)/10 = 2.0, 1.2, 0.8: floors 2, 1, 0; the missing one goes to the largest
    # remainder (0.8, class 2)
    ((5, 3, 2), 4, {0: 2, 1: 1, 2: 1}),
    # 7·(5, 3, 2)/10 = 3.5, 2.1, 1.4: floors 3, 2, 1; remainder 0.5 is the largest
    ((5, 3, 2), 7, {0: 4, 1: 2, 2: 1}),
    # three equal remainders (2/3 each) and two images missing: ties go to the smaller labels
    ((3, 3, 3), 2, {0: 1, 1: 1, 2: 0}),
    # proportional: CIFAR-like 10 classes of 5,000, 1,000 held out
    ((5000,) * 10, 1000, {c: 100 for c in range(10)}),
    ((4, 1), 0, {0: 0, 1: 0}),
])
def test_stratified_counts_match_the_hand_computed_largest_remainder(counts, val_size, expected):
    assert stratified_counts(labels_with(counts), val_size) == expected


def test_counts_always_sum_to_val_size_and_never_exceed_a_class():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        counts = torch.randint(1, 40, (int(torch.randint(2, 12, (1,), generator=g)),), generator=g).tolist()
        labels = labels_with(counts)
        val_size = int(torch.randint(0, labels.numel(), (1,), generator=g))
        found = stratified_counts(labels, val_size)
        assert sum(found.values()) == val_size
        assert all(0 <= found[c] <= n for c, n in enumerate(counts))


def test_indices_are_distinct_stratified_and_fixed_by_the_seed_alone():
    labels = labels_with((30, 20, 10))
    index = validation_indices(labels, 12, seed=3)
    assert index.unique().numel() == 12
    assert torch.bincount(labels[index], minlength=3).tolist() == [6, 4, 2]
    torch.manual_seed(123)  # the global RNG (train.seed) plays no part
    assert torch.equal(validation_indices(labels, 12, seed=3), index)
    assert not torch.equal(validation_indices(labels, 12, seed=4), index)
    # any prefix mixes classes: the order is shuffled after the per-class draw
    assert labels[index[:3]].unique().numel() > 1


def splits(n_train=60, n_test=10):
    g = torch.Generator().manual_seed(1)
    train_y = labels_with((30, 20, 10))[:n_train]
    train_x = torch.arange(n_train, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()
    test_x = torch.randint(0, 255, (n_test, 1, 2, 2), dtype=torch.uint8, generator=g)
    return DataSplits(DatasetInfo("toy", 3, 1, (2, 2)), train_x, train_y, test_x, torch.zeros(n_test, dtype=torch.long))


def test_hold_out_moves_images_from_train_to_val_and_keeps_the_training_order():
    original = splits()
    held = hold_out_validation(original, 12, 0)
    index = validation_indices(original.train_y, 12, 0)
    assert held.n_val == 12 and held.train_x.shape[0] == 48
    assert torch.equal(held.val_x, original.train_x[index]) and torch.equal(held.val_y, original.train_y[index])
    # each image carries its position as its pixel value: train ∪ val = everything, no overlap
    train_ids, val_ids = held.train_x[:, 0, 0, 0].tolist(), held.val_x[:, 0, 0, 0].tolist()
    assert sorted(train_ids + val_ids) == list(range(60)) and not set(train_ids) & set(val_ids)
    assert train_ids == sorted(train_ids)  # the data set's order, minus the held-out images
    assert torch.equal(held.test_x, original.test_x)


def test_val_size_zero_changes_nothing_and_too_large_is_a_clear_error():
    original = splits()
    held = hold_out_validation(original, 0, 0)
    assert held.n_val == 0 and held.train_x is original.train_x and held.val_x.shape == (0, 1, 2, 2)
    with pytest.raises(RecipeError, match=r"val_size = 60 leaves no training image: data set 'toy' has 60 "
                                          r"training images.*data.val_size=6"):
        hold_out_validation(original, 60, 0, dataset="toy")


def test_callbacks_get_a_test_split_that_cannot_be_read():
    data = without_test(splits())
    assert data.n_val == 0 and data.train_x.shape[0] == 60
    for read in (lambda: data.test_x[:2], lambda: data.test_x.shape, lambda: len(data.test_y),
                 lambda: list(data.test_y)):
        with pytest.raises(TrainingError, match="only the final evaluation reads the test images"):
            read()
    assert "withheld" in repr(data.test_x)
