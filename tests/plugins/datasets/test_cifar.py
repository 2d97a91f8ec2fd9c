"""CIFAR-10/100 from fabricated files in the standard python-pickle layout."""

import pickle

import numpy as np
import pytest
import torch

import advdistill as ad
from advdistill.errors import DataError


def write_batch(path, n, num_classes, label_key, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
    labels = rng.integers(0, num_classes, size=n).tolist()
    with open(path, "wb") as fh:
        pickle.dump({b"data": data, label_key: labels, b"batch_label": b"x"}, fh)
    return data, labels


def test_cifar10_reads_the_pickle_layout(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    expected = [write_batch(folder / f"data_batch_{i}", 4, 10, b"labels", i) for i in range(1, 6)]
    _, test_labels = write_batch(folder / "test_batch", 3, 10, b"labels", 9)
    splits = ad.build("dataset", "cifar10", root=str(tmp_path)).load()
    assert splits.train_x.shape == (20, 3, 32, 32) and splits.train_x.dtype == torch.uint8
    # the row layout is 1024 red, 1024 green, 1024 blue values: channel-first after reshape
    first = expected[0][0][0]
    assert torch.equal(splits.train_x[0, 1].flatten(), torch.from_numpy(first[1024:2048]))
    assert splits.train_y.tolist() == [label for _, labels in expected for label in labels]
    assert splits.test_y.tolist() == test_labels and splits.info.num_classes == 10
    assert splits.info.class_names[0] == "airplane"
    # the folder itself is accepted as root too
    again = ad.build("dataset", "cifar10", root=str(folder)).load()
    assert torch.equal(again.test_x, splits.test_x)


def test_cifar100_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _, labels = write_batch(folder / "train", 5, 100, b"fine_labels", 1)
    write_batch(folder / "test", 2, 100, b"fine_labels", 2)
    splits = ad.build("dataset", "cifar100", root=str(tmp_path)).load()
    assert splits.train_y.tolist() == labels and splits.info.num_classes == 100


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(DataError) as err:
        ad.build("dataset", "cifar10", root=str(tmp_path)).load()
    message = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in message
    assert "cifar-10-python.tar.gz" in message and "Nothing is downloaded" in message


def test_corrupt_batch_is_named(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"train is not a valid cifar100 batch file"):
        ad.build("dataset", "cifar100", root=str(tmp_path)).load()


def test_out_of_range_labels_are_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        write_batch(folder / f"data_batch_{i}", 2, 10, b"labels", i)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [12]}, fh)
    with pytest.raises(DataError, match=r"outside 0\.\.9"):
        ad.build("dataset", "cifar10", root=str(tmp_path)).load()


def test_a_batch_path_that_is_a_directory_is_a_data_error(tmp_path):
    folder = tmp_path / "cifar-100-python"
    (folder / "train").mkdir(parents=True)  # e.g. an archive extracted one level too deep
    with pytest.raises(DataError, match=r"train is a directory, not a cifar100 batch file.*files train, test"):
        ad.build("dataset", "cifar100", root=str(tmp_path)).load()
