import torch

from advdistill.engine.data import InMemoryLoader, random_crop, random_flip


def test_random_crop_matches_per_image_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 2, 6, 7, generator=g)
    ours = random_crop(x, 2, torch.Generator().manual_seed(1))
    g2 = torch.Generator().manual_seed(1)
    oy = torch.randint(0, 5, (5,), generator=g2)
    ox = torch.randint(0, 5, (5,), generator=g2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(5):
        ref = padded[i, :, oy[i] : oy[i] + 6, ox[i] : ox[i] + 7]
        assert torch.equal(ours[i], ref)


def test_random_flip_flips_about_half():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float).view(2, 1, 2, 3).repeat(50, 1, 1, 1)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = (out != x).flatten(1).any(1)
    assert torch.equal(out[flipped], x[flipped].flip(3))
    assert 20 < flipped.sum() < 80


def test_loader_order_is_a_function_of_seed_and_epoch():
    images = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1)
    labels = torch.arange(20)

    def order(seed, epoch):
        loader = InMemoryLoader(images, labels, batch_size=8, device=torch.device("cpu"), shuffle=True, seed=seed)
        loader.set_epoch(epoch)
        return torch.cat([y for _, y in loader]).tolist()

    assert order(0, 1) == order(0, 1)
    assert order(0, 1) != order(0, 2)
    assert sorted(order(0, 3)) == list(range(20))
    assert len(InMemoryLoader(images, labels, batch_size=8, device=torch.device("cpu"), drop_last=True)) == 2


def test_loader_shards_disjointly():
    images = torch.zeros(10, 1, 1, 1, dtype=torch.uint8)
    labels = torch.arange(10)
    seen = []
    for rank in range(2):
        loader = InMemoryLoader(images, labels, batch_size=3, device=torch.device("cpu"), shuffle=True,
                                rank=rank, world_size=2)
        seen.append(torch.cat([y for _, y in loader]).tolist())
    assert len(seen[0]) == len(seen[1]) == 5 and not set(seen[0]) & set(seen[1])


def test_batches_have_the_models_memory_format_whatever_the_augmentation():
    # a channels-last batch into a contiguous model makes conv weight gradients that DDP's buckets
    # do not match ("Grad strides do not match bucket view strides")
    images = torch.randint(0, 256, (8, 3, 6, 6), dtype=torch.uint8)
    labels = torch.arange(8)
    for augment in ("none", "crop", "flip", "crop_flip"):
        for channels_last in (False, True):
            loader = InMemoryLoader(images, labels, batch_size=4, device=torch.device("cpu"), augment=augment,
                                    crop_padding=2, channels_last=channels_last)
            layout = torch.channels_last if channels_last else torch.contiguous_format
            for x, _ in loader:
                assert x.is_contiguous(memory_format=layout), (augment, channels_last, x.stride())
