"""Every registered data set keeps the data-set contract (advdistill.testing.check_dataset_source):
uint8 NCHW images matching its info, labels in range, the expected counts (fabricated files)."""

import pytest
from test_cifar import write_batch
from test_idx import write_idx
from test_svhn import write
from test_tiny_imagenet import VAL_CLASSES, WNIDS, pristine  # noqa: F401  (pristine: a fixture used here)

import advdistill as ad
from advdistill.errors import DataError
from advdistill.testing import check_dataset_source


def cifar10(tmp_path, _pristine):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        write_batch(folder / f"data_batch_{i}", 3, 10, b"labels", seed=i)
    write_batch(folder / "test_batch", 4, 10, b"labels", seed=9)
    return ad.build("dataset", "cifar10", root=str(tmp_path)), 15, 4, 10


def cifar100(tmp_path, _pristine):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_batch(folder / "train", 6, 100, b"fine_labels", seed=1)
    write_batch(folder / "test", 4, 100, b"fine_labels", seed=2)
    return ad.build("dataset", "cifar100", root=str(tmp_path)), 6, 4, 100


def svhn(tmp_path, _pristine):
    write(tmp_path / "svhn", "train", 5, seed=1)
    write(tmp_path / "svhn", "test", 3, seed=2)
    return ad.build("dataset", "svhn", root=str(tmp_path)), 5, 3, 10


def tiny_imagenet(tmp_path, folder):
    return ad.build("dataset", "tiny_imagenet", root=str(folder), cache=False), 2 * len(WNIDS), len(VAL_CLASSES), 200


def mnist5k(tmp_path, _pristine):
    return ad.build("dataset", "mnist5k"), 4000, 1000, 10


def mnist(tmp_path, _pristine):
    write_idx(tmp_path / "mnist", n_train=20, n_test=10, seed=1)
    return ad.build("dataset", "mnist", root=str(tmp_path)), 20, 10, 10


def fashion_mnist(tmp_path, _pristine):
    write_idx(tmp_path / "fashion-mnist", n_train=20, n_test=10, gz=True, seed=2)
    return ad.build("dataset", "fashion_mnist", root=str(tmp_path)), 20, 10, 10


def synthetic(tmp_path, _pristine):
    return ad.build("dataset", "synthetic", n_train=12, n_test=5, num_classes=3, in_chans=2, image_size=6), 12, 5, 3


SOURCES = {f.__name__: f for f in (cifar10, cifar100, svhn, tiny_imagenet, mnist5k, mnist, fashion_mnist, synthetic)}


def test_every_dataset_is_covered():
    names = {i.name for i in ad.list_components("dataset") if i.package == "advdistill" and not i.alias_of}
    assert names == set(SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_dataset_contract(name, tmp_path, request):
    folder = request.getfixturevalue("pristine") if name == "tiny_imagenet" else None
    source, n_train, n_test, num_classes = SOURCES[name](tmp_path, folder)
    check_dataset_source(source, n_train=n_train, n_test=n_test, num_classes=num_classes)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn", "tiny_imagenet", "mnist", "fashion_mnist"])
def test_check_files_raises_what_load_would_without_reading(name, tmp_path):
    # `recipe check` calls check_files(): the same message as the training run would get, found at once
    source = ad.build("dataset", name, root=str(tmp_path / "empty"))
    with pytest.raises(DataError) as by_load:
        source.load()
    with pytest.raises(DataError) as by_check:
        source.check_files()
    assert str(by_check.value) == str(by_load.value)
    assert "Nothing is downloaded at run time" in str(by_check.value)


def test_check_files_finds_a_single_missing_file(tmp_path):
    source, *_ = cifar10(tmp_path, None)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError, match=r"expected .*test_batch"):
        source.check_files()
    write(tmp_path / "svhn", "train", 5, seed=1)
    write(tmp_path / "svhn", "test", 3, seed=2)
    assert ad.build("dataset", "svhn", root=str(tmp_path)).check_files() is None
    with pytest.raises(DataError, match=r"extra_32x32\.mat"):
        ad.build("dataset", "svhn", root=str(tmp_path), use_extra=True).check_files()


def test_check_files_reads_no_data(tmp_path, monkeypatch):
    source, *_ = cifar10(tmp_path, None)
    monkeypatch.setattr("pickle.load", lambda *a, **k: pytest.fail("check_files read a batch"))
    assert source.check_files() is None


def test_check_files_finds_a_missing_idx_file_without_reading(tmp_path, monkeypatch):
    source, *_ = fashion_mnist(tmp_path, None)
    monkeypatch.setattr("gzip.open", lambda *a, **k: pytest.fail("check_files read an idx file"))
    assert source.check_files() is None
    (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\[\.gz\] not found"):
        source.check_files()
