"""SVHN from fabricated .mat files: scipy-written ones and a MATLAB level-5 file written by hand."""

import struct
import zlib

import numpy as np
import pytest
import scipy.io
import torch

import advdistill as ad
from advdistill.errors import DataError


def fabricate(n, seed, labels=None):
    """X as SVHN stores it (row, column, channel, image), y as N x 1 labels 1..10."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, size=(n, 1), dtype=np.uint8) if labels is None else np.asarray(labels).reshape(n, 1)
    return x, y


def write(folder, split, n, seed, **kwargs):
    folder.mkdir(parents=True, exist_ok=True)
    x, y = fabricate(n, seed, **kwargs)
    scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": x, "y": y}, do_compression=True)
    return x, y


def test_svhn_reads_the_mat_files(tmp_path):
    x, _ = write(tmp_path / "svhn", "train", 6, 1, labels=[10, 1, 2, 10, 9, 5])
    test_x, test_y = write(tmp_path / "svhn", "test", 4, 2)
    splits = ad.build("dataset", "svhn", root=str(tmp_path)).load()
    assert splits.train_x.shape == (6, 3, 32, 32) and splits.train_x.dtype == torch.uint8
    # MATLAB's X[row, col, channel, n] is image n, channel, row, col
    assert splits.train_x[4, 2, 7, 30] == x[7, 30, 2, 4]
    assert torch.equal(splits.train_x[1], torch.from_numpy(x[:, :, :, 1].transpose(2, 0, 1).copy()))
    assert splits.train_y.tolist() == [0, 1, 2, 0, 9, 5] and splits.train_y.dtype == torch.int64  # 10 is digit 0
    assert splits.test_y.tolist() == [int(v) % 10 for v in test_y.ravel()]
    assert torch.equal(splits.test_x[3], torch.from_numpy(test_x[..., 3].transpose(2, 0, 1).copy()))
    assert splits.info.num_classes == 10 and splits.info.image_size == (32, 32)
    assert splits.info.class_names == tuple("0123456789")


def test_root_may_be_the_folder_itself_or_hold_the_files_directly(tmp_path, monkeypatch):
    write(tmp_path / "svhn", "train", 2, 1)
    write(tmp_path / "svhn", "test", 2, 2)
    nested = ad.build("dataset", "svhn", root=str(tmp_path)).load()
    direct = ad.build("dataset", "svhn", root=str(tmp_path / "svhn")).load()
    assert torch.equal(nested.train_x, direct.train_x)
    # torchvision leaves the files directly in its root, under any name
    write(tmp_path / "torchvision", "train", 3, 3)
    write(tmp_path / "torchvision", "test", 1, 4)
    monkeypatch.setenv("SVHN_FILES", str(tmp_path / "torchvision"))
    assert ad.build("dataset", "svhn", root="$SVHN_FILES").load().train_x.shape[0] == 3


def test_extra_is_appended_to_the_training_set_only_when_asked(tmp_path):
    folder = tmp_path / "svhn"
    train_x, _ = write(folder, "train", 3, 1)
    write(folder, "test", 2, 2)
    assert ad.build("dataset", "svhn", root=str(tmp_path)).load().train_x.shape[0] == 3
    with pytest.raises(DataError, match=r"extra_32x32\.mat"):
        ad.build("dataset", "svhn", root=str(tmp_path), use_extra=True).load()
    extra_x, _ = write(folder, "extra", 4, 3)
    splits = ad.build("dataset", "svhn", root=str(tmp_path), use_extra=True).load()
    assert splits.train_x.shape[0] == 7 and splits.test_x.shape[0] == 2
    assert torch.equal(splits.train_x[3], torch.from_numpy(extra_x[..., 0].transpose(2, 0, 1).copy()))
    assert torch.equal(splits.train_x[2], torch.from_numpy(train_x[..., 2].transpose(2, 0, 1).copy()))


# -- a MATLAB level-5 file written from the format specification, as MATLAB itself writes it:
# -- zlib-compressed miMATRIX elements, uint8 images and double-precision labels
MI_INT8, MI_UINT8, MI_INT32, MI_UINT32, MI_DOUBLE, MI_MATRIX, MI_COMPRESSED = 1, 2, 5, 6, 9, 14, 15
MX_DOUBLE_CLASS, MX_UINT8_CLASS = 6, 9


def element(kind, payload):
    return struct.pack("<II", kind, len(payload)) + payload + b"\0" * (-len(payload) % 8)


def matrix(name, array, mx_class, mi_type):
    return element(MI_MATRIX, b"".join([
        element(MI_UINT32, struct.pack("<II", mx_class, 0)),  # array flags: the class, no complex/global
        element(MI_INT32, struct.pack(f"<{array.ndim}i", *array.shape)),
        element(MI_INT8, name.encode()),
        element(mi_type, array.tobytes(order="F")),  # MATLAB stores column-major
    ]))


def write_level5(path, x, y):
    header = b"MATLAB 5.0 MAT-file, fabricated for a test".ljust(116) + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    body = b""
    for item in (matrix("X", x, MX_UINT8_CLASS, MI_UINT8), matrix("y", y.astype(np.float64), MX_DOUBLE_CLASS,
                                                                    MI_DOUBLE)):
        packed = zlib.compress(item)
        body += struct.pack("<II", MI_COMPRESSED, len(packed)) + packed
    path.write_bytes(header + body)


def test_a_hand_written_matlab_level5_file_reads_the_same(tmp_path):
    folder = tmp_path / "svhn"
    folder.mkdir()
    x, y = fabricate(5, 7, labels=[3, 10, 10, 1, 8])
    write_level5(folder / "train_32x32.mat", x, y)
    write_level5(folder / "test_32x32.mat", *fabricate(2, 8))
    splits = ad.build("dataset", "svhn", root=str(tmp_path)).load()
    assert splits.train_y.tolist() == [3, 0, 0, 1, 8]
    assert torch.equal(splits.train_x, torch.from_numpy(x.transpose(3, 2, 0, 1).copy()))


def test_missing_files_say_where_they_come_from(tmp_path):
    with pytest.raises(DataError) as err:
        ad.build("dataset", "svhn", root=str(tmp_path)).load()
    message = str(err.value)
    assert str(tmp_path / "svhn" / "train_32x32.mat") in message
    assert "http://ufldl.stanford.edu/housenumbers/" in message and "Nothing is downloaded" in message
    write(tmp_path / "svhn", "train", 2, 1)
    with pytest.raises(DataError, match=r"test_32x32\.mat"):
        ad.build("dataset", "svhn", root=str(tmp_path)).load()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "bad_checksum", "empty"])
def test_damaged_files_are_named(tmp_path, damage):
    folder = tmp_path / "svhn"
    write(folder, "test", 2, 2)
    path = folder / "train_32x32.mat"
    write(folder, "train", 8, 1)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"<html>404 Not Found</html>" * 10)
    elif damage == "bad_checksum":
        data[400:440] = bytes(40)  # inside the compressed X element
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"train_32x32\.mat is not a readable SVHN \.mat file.*Download it again"):
        ad.build("dataset", "svhn", root=str(tmp_path)).load()


def test_wrong_contents_are_refused(tmp_path):
    folder = tmp_path / "svhn"
    write(folder, "test", 2, 2)
    train = folder / "train_32x32.mat"
    load = ad.build("dataset", "svhn", root=str(tmp_path)).load
    x, y = fabricate(3, 1)
    scipy.io.savemat(train, {"images": x, "y": y})
    with pytest.raises(DataError, match="has no variable 'X'"):
        load()
    scipy.io.savemat(train, {"X": x[:28], "y": y})
    with pytest.raises(DataError, match=r"expected uint8 of shape 32x32x3xN"):
        load()
    scipy.io.savemat(train, {"X": x, "y": y[:2]})
    with pytest.raises(DataError, match="2 labels for 3 images"):
        load()
    for bad in ([1, 11, 2], [1, 0.5, 2]):
        scipy.io.savemat(train, {"X": x, "y": np.array(bad, dtype=np.float64).reshape(3, 1)})
        with pytest.raises(DataError, match=r"labels must be 1\.\.10"):
            load()


def test_the_svhn_base_recipe_trains_on_the_files(tmp_path, train_data_base):
    write(tmp_path / "svhn", "train", 8, 1)
    write(tmp_path / "svhn", "test", 4, 2)
    record = train_data_base("svhn", tmp_path)
    assert record["epoch"] == 1 and set(record["eval"]) >= {"clean", "pgd"}
