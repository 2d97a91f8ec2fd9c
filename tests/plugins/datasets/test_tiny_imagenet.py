"""Tiny-ImageNet from a fabricated tiny-imagenet-200/ tree (200 classes, a few JPEGs each)."""

import logging
import os
import shutil

import pytest
import torch
from PIL import Image

import advdistill as ad
from advdistill.errors import DataError
from advdistill_plugins.datasets import tiny_imagenet
from advdistill_plugins.datasets.tiny_imagenet import CACHE_NAME

WNIDS = [f"n{9_000_000 - 7 * i:08d}" for i in range(200)]  # listed in descending order, unlike the labels
TRAIN_PER_CLASS, VAL_CLASSES = 2, (0, 5, 199, 5)  # val images: val_0 is class 0, val_1 class 5, ...


def color(label, index):
    """A distinct solid colour per image: JPEG keeps a flat colour within a few levels."""
    return (label % 256, (37 * index + 11) % 256, (255 - label) % 256)


def save(path, rgb, mode="RGB", size=64):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), rgb).convert(mode).save(path, format="JPEG", quality=95)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source") / "tiny-imagenet-200"
    folder.mkdir()
    (folder / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    for wnid in WNIDS:
        label = sorted(WNIDS).index(wnid)
        for i in range(TRAIN_PER_CLASS):
            save(folder / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", color(label, i))
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")  # present in the archive, unused
    lines = []
    for i, label in enumerate(VAL_CLASSES):
        save(folder / "val" / "images" / f"val_{i}.JPEG", color(label, 100 + i))
        lines.append(f"val_{i}.JPEG\t{sorted(WNIDS)[label]}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    save(folder / "test" / "images" / "test_0.JPEG", (1, 2, 3))  # unlabelled: never read
    # the archive has a few grayscale JPEGs; class 7's first image is one of them here
    save(folder / "train" / sorted(WNIDS)[7] / "images" / f"{sorted(WNIDS)[7]}_0.JPEG", (90, 90, 90), mode="L")
    return folder


@pytest.fixture
def data_root(pristine, tmp_path):
    shutil.copytree(pristine, tmp_path / "tiny-imagenet-200")
    return tmp_path


def load(root, **kwargs):
    return ad.build("dataset", "tiny_imagenet", root=str(root), **kwargs).load()


def test_reads_the_folder_layout(data_root):
    splits = load(data_root, cache=False)
    n_train = 200 * TRAIN_PER_CLASS
    assert splits.train_x.shape == (n_train, 3, 64, 64) and splits.train_x.dtype == torch.uint8
    assert splits.test_x.shape == (len(VAL_CLASSES), 3, 64, 64)
    # labels: positions in the sorted class ids (torchvision ImageFolder's order), not wnids.txt's order
    assert splits.info.class_names == tuple(sorted(WNIDS)) and splits.info.num_classes == 200
    assert splits.info.image_size == (64, 64) and splits.info.in_chans == 3
    assert splits.train_y.tolist() == [label for label in range(200) for _ in range(TRAIN_PER_CLASS)]
    assert splits.test_y.tolist() == list(VAL_CLASSES)  # val_annotations.txt's order
    # pixels: each image's flat colour, channel first
    for index, label, i in ((0, 0, 0), (2 * 150 + 1, 150, 1)):
        mean = splits.train_x[index].float().mean(dim=(1, 2))
        torch.testing.assert_close(mean, torch.tensor(color(label, i), dtype=torch.float32), atol=3.0, rtol=0)
    mean = splits.test_x[2].float().mean(dim=(1, 2))
    torch.testing.assert_close(mean, torch.tensor(color(199, 102), dtype=torch.float32), atol=3.0, rtol=0)
    gray = splits.train_x[2 * 7]  # converted to RGB: three equal channels
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2]) and abs(int(gray[0, 5, 5]) - 90) <= 3


def test_root_may_be_the_folder_itself(data_root):
    a = load(data_root, cache=False)
    b = load(data_root / "tiny-imagenet-200", cache=False)
    assert torch.equal(a.test_x, b.test_x) and torch.equal(a.train_y, b.train_y)


def test_decoded_images_are_cached_until_the_folder_changes(data_root, monkeypatch):
    first = load(data_root)
    cache = data_root / CACHE_NAME  # beside the folder, not inside it
    assert cache.exists()
    real_decode = tiny_imagenet.decode
    calls = []

    def counting_decode(files):
        calls.append(len(files))
        return real_decode(files)

    monkeypatch.setattr(tiny_imagenet, "decode", counting_decode)
    again = load(data_root)
    assert calls == []  # served from the cache
    for key in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(again, key), getattr(first, key))
    # replacing one image (new content, new mtime) invalidates the cache
    image = data_root / "tiny-imagenet-200" / "val" / "images" / "val_0.JPEG"
    save(image, (250, 10, 10))
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = load(data_root)
    assert calls == [200 * TRAIN_PER_CLASS, len(VAL_CLASSES)]
    assert abs(changed.test_x[0, 0].float().mean().item() - 250) <= 3
    load(data_root)
    assert len(calls) == 2  # the rebuilt cache is used again


def test_cache_can_be_moved_or_switched_off(data_root, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("cache")
    load(data_root, cache_dir=str(elsewhere))
    assert (elsewhere / CACHE_NAME).exists() and not (data_root / CACHE_NAME).exists()
    load(data_root, cache=False)
    assert not (data_root / CACHE_NAME).exists()


def test_a_damaged_cache_is_rebuilt(data_root, caplog):
    expected = load(data_root)
    (data_root / CACHE_NAME).write_bytes(b"\x00" * 100)
    with caplog.at_level(logging.WARNING):
        again = load(data_root)
    assert "unreadable cache" in caplog.text
    assert torch.equal(again.train_x, expected.train_x)
    assert (data_root / CACHE_NAME).stat().st_size > 100  # written anew


def test_an_unwritable_cache_dir_only_warns(data_root, caplog):
    blocker = data_root / "a-file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING):
        splits = load(data_root, cache_dir=str(blocker / "cache"))
    assert splits.train_x.shape[0] == 200 * TRAIN_PER_CLASS
    assert "could not write the Tiny-ImageNet cache" in caplog.text and "cache_dir" in caplog.text


def test_a_subset_is_announced(data_root, caplog):
    with caplog.at_level(logging.WARNING):
        load(data_root, cache=False)
    assert "holds 400 training and 4 validation images; the official archive has 100000 and 10000" in caplog.text


def test_a_missing_folder_says_where_it_comes_from(tmp_path):
    with pytest.raises(DataError) as err:
        load(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "tiny-imagenet-200") in message and "tiny-imagenet-200.zip" in message
    assert "Nothing is downloaded" in message


@pytest.mark.parametrize("name", ["wnids.txt", "val/val_annotations.txt", "train", "val/images"])
def test_missing_parts_are_named(data_root, name):
    path = data_root / "tiny-imagenet-200" / name
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    with pytest.raises(DataError, match="expected .*" + name.replace("/", ".") + r".*extract the archive again"):
        load(data_root)


def test_class_count_mismatches(data_root):
    folder = data_root / "tiny-imagenet-200"
    (folder / "wnids.txt").write_text("\n".join(WNIDS[:-1]))
    with pytest.raises(DataError, match=r"lists 199 class ids .*has 200"):
        load(data_root)
    (folder / "wnids.txt").write_text("\n".join(WNIDS))
    missing = sorted(WNIDS)[3]
    shutil.rmtree(folder / "train" / missing / "images")
    with pytest.raises(DataError, match=f"class count mismatch: .*1 have no images .*{missing}"):
        load(data_root)
    save(folder / "train" / missing / "images" / "x.JPEG", (0, 0, 0))
    (folder / "train" / "n12345678").mkdir()
    with pytest.raises(DataError, match=r"class count mismatch: .*does not list: n12345678"):
        load(data_root)


def test_a_binary_class_list_is_named(data_root):
    wnids = data_root / "tiny-imagenet-200" / "wnids.txt"
    wnids.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match=r"wnids\.txt is not a text file"):
        load(data_root)


def test_bad_validation_annotations(data_root):
    folder = data_root / "tiny-imagenet-200"
    annotations = folder / "val" / "val_annotations.txt"
    good = annotations.read_text()
    annotations.write_text(good + "val_9.JPEG\tn00000001\t0\t0\t1\t1\n")
    with pytest.raises(DataError, match=r"val_annotations\.txt line 5: expected"):
        load(data_root)
    annotations.write_text(good)
    (folder / "val" / "images" / "val_2.JPEG").unlink()
    with pytest.raises(DataError, match=r"lacks 1 images .*\(val_2\.JPEG\)"):
        load(data_root)


def test_damaged_images_are_named(data_root):
    image = data_root / "tiny-imagenet-200" / "train" / sorted(WNIDS)[9] / "images" / f"{sorted(WNIDS)[9]}_1.JPEG"
    image.write_bytes(image.read_bytes()[:200])
    with pytest.raises(DataError, match=f"{image.name} is not a readable JPEG"):
        load(data_root)
    save(image, (1, 2, 3), size=32)
    with pytest.raises(DataError, match=f"{image.name} is 32x32 pixels; Tiny-ImageNet images are 64x64"):
        load(data_root)


def test_the_tiny_imagenet_base_recipe_trains_on_the_folder(data_root, train_data_base):
    record = train_data_base("tiny_imagenet", data_root)
    assert record["epoch"] == 1 and set(record["eval"]) >= {"clean", "pgd"}
    assert (data_root / CACHE_NAME).exists()
