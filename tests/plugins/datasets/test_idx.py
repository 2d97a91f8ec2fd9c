"""MNIST / Fashion-MNIST from fabricated idx files (raw and gzipped), and their errors."""

import gzip
import struct

import numpy as np
import pytest
import torch

import advdistill as ad
from advdistill.errors import DataError

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx encoding written independently of the reader: magic 0x0000080N, big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(folder, n_train=20, n_test=10, size=(28, 28), gz=False, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *size), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *size), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_reads_the_idx_layout(tmp_path, gz):
    arrays = write_idx(tmp_path / "fashion-mnist", gz=gz)
    splits = ad.build("dataset", "fashion_mnist", root=str(tmp_path)).load()
    assert splits.train_x.shape == (20, 1, 28, 28) and splits.train_x.dtype == torch.uint8
    assert torch.equal(splits.train_x[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    assert torch.equal(splits.test_x[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))
    assert splits.train_y.dtype == torch.int64
    assert splits.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert splits.info.name == "fashion_mnist" and splits.info.num_classes == 10 and splits.info.in_chans == 1
    assert splits.info.class_names[9] == "Ankle boot"
    # the folder itself is a valid root too
    again = ad.build("dataset", "fashion_mnist", root=str(tmp_path / "fashion-mnist")).load()
    assert torch.equal(again.test_x, splits.test_x)


def test_mnist_uses_its_own_folder_and_expands_variables(tmp_path, monkeypatch):
    write_idx(tmp_path / "mnist", size=(8, 8))
    monkeypatch.setenv("IDX_TEST_ROOT", str(tmp_path))
    splits = ad.build("dataset", "mnist", root="$IDX_TEST_ROOT").load()
    assert splits.info.name == "mnist" and splits.info.image_size == (8, 8)
    assert splits.info.class_names[3] == "3"


def test_missing_files_are_named_with_their_origin(tmp_path):
    with pytest.raises(DataError) as err:
        ad.build("dataset", "fashion_mnist", root=str(tmp_path)).load()
    message = str(err.value)
    assert str(tmp_path / "fashion-mnist" / "train-images-idx3-ubyte") in message
    for stem in STEMS:
        assert stem in message
    assert "apt-get install dataset-fashion-mnist" in message and "/usr/share/datasets/fashion-mnist" in message
    assert "Nothing is downloaded" in message


def test_a_missing_label_file_is_named(tmp_path):
    write_idx(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\[\.gz\] not found"):
        ad.build("dataset", "mnist", root=str(tmp_path)).load()


def test_truncated_raw_file(tmp_path):
    write_idx(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: the header promises 20 x 28 x 28 .* truncated"):
        ad.build("dataset", "mnist", root=str(tmp_path)).load()


def test_truncated_gzip_file(tmp_path):
    write_idx(tmp_path, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz cannot be read .*truncated or corrupt"):
        ad.build("dataset", "mnist", root=str(tmp_path)).load()


def test_wrong_magic_number(tmp_path):
    write_idx(tmp_path)
    # a labels file where the images should be
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros(20, np.uint8)))
    with pytest.raises(DataError, match=r"magic number 0x00000801, expected 0x00000803"):
        ad.build("dataset", "mnist", root=str(tmp_path)).load()


def test_header_shorter_than_expected(tmp_path):
    write_idx(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match=r"shorter than an idx header"):
        ad.build("dataset", "mnist", root=str(tmp_path)).load()


def test_label_count_and_range_are_checked(tmp_path):
    write_idx(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(19, np.uint8)))
    with pytest.raises(DataError, match=r"19 labels for 20 images"):
        ad.build("dataset", "mnist", root=str(tmp_path)).load()
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(20, 10, np.uint8)))
    with pytest.raises(DataError, match=r"labels outside 0\.\.9 \(found 10\)"):
        ad.build("dataset", "mnist", root=str(tmp_path)).load()


def test_train_subset_is_stratified_and_fixed_by_its_own_seed(tmp_path):
    arrays = write_idx(tmp_path, n_train=100, size=(4, 4))
    full = ad.build("dataset", "mnist", root=str(tmp_path)).load()
    sub = ad.build("dataset", "mnist", root=str(tmp_path), train_subset=30, subset_seed=1).load()
    assert sub.train_x.shape[0] == 30
    assert torch.bincount(sub.train_y).tolist() == [3] * 10
    # every chosen image is a training image with its own label, none twice
    rows = {arrays["train-images-idx3-ubyte"][i].tobytes(): int(label)
            for i, label in enumerate(arrays["train-labels-idx1-ubyte"])}
    assert [rows[x.numpy().tobytes()] for x in sub.train_x[:, 0]] == sub.train_y.tolist()
    assert len({x.numpy().tobytes() for x in sub.train_x}) == 30
    same = ad.build("dataset", "mnist", root=str(tmp_path), train_subset=30, subset_seed=1).load()
    other = ad.build("dataset", "mnist", root=str(tmp_path), train_subset=30, subset_seed=2).load()
    assert torch.equal(same.train_x, sub.train_x) and not torch.equal(other.train_x, sub.train_x)
    assert torch.equal(sub.test_x, full.test_x)  # the test split is never cut
    with pytest.raises(DataError, match=r"train_subset = 101 exceeds the 100 training images"):
        ad.build("dataset", "mnist", root=str(tmp_path), train_subset=101).load()


def test_train_subset_follows_the_class_shares_and_keeps_the_file_order(tmp_path):
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20, dtype=np.uint8)
    images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1)  # image i holds the value i
    for stem, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                        ("t10k-images-idx3-ubyte", images[:5]), ("t10k-labels-idx1-ubyte", labels[:5])):
        (tmp_path / stem).write_bytes(idx_bytes(array))
    sub = ad.build("dataset", "mnist", root=str(tmp_path), train_subset=11).load()
    # quotas 5.5 / 3.3 / 2.2: floors 5, 3, 2 and the one left over goes to class 0 (largest remainder)
    assert torch.bincount(sub.train_y).tolist() == [6, 3, 2]
    chosen = sub.train_x.flatten().tolist()
    assert len(set(chosen)) == 11 and chosen == sorted(chosen)
    assert sub.train_y.tolist() == labels[chosen].tolist()


def test_unknown_key_is_refused():
    from advdistill.errors import RecipeError

    with pytest.raises(RecipeError, match=r"unknown key 'train_limit'"):
        ad.build("dataset", "fashion_mnist", train_limit=5)
