import torch

import advdistill as ad


def test_synthetic_is_seeded_and_shaped():
    a = ad.build("dataset", "synthetic", n_train=10, n_test=4, num_classes=3, in_chans=2, image_size=6).load()
    b = ad.build("dataset", "synthetic", n_train=10, n_test=4, num_classes=3, in_chans=2, image_size=6).load()
    assert a.train_x.shape == (10, 2, 6, 6) and a.test_x.shape == (4, 2, 6, 6)
    assert torch.equal(a.train_x, b.train_x) and a.train_y.max() < 3
    c = ad.build("dataset", "synthetic", n_train=10, n_test=4, seed=1).load()
    assert not torch.equal(c.train_y, ad.build("dataset", "synthetic", n_train=10, n_test=4).load().train_y)
