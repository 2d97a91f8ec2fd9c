"""Every registered architecture keeps the model-factory contract (advdistill.testing.check_model_factory)."""

import pytest

import advdistill as ad
from advdistill.testing import check_model_factory

#: (kind, parameters, image size): the smallest settings of each architecture (a new model must be added here)
SMALL = {
    "small_cnn": ("small_cnn", {"widths": [4], "hidden": 8}, 8),
    "cifar_resnet18": ("cifar_resnet18", {}, 32),
    "resnet50": ("resnet50", {"stem": "tiny_stride2"}, 16),
    "cifar_mobilenetv2": ("cifar_mobilenetv2", {}, 32),
    "wideresnet": ("wideresnet", {"depth": 10, "widen_factor": 1}, 32),
    "dm_wideresnet": ("dm_wideresnet", {"depth": 10, "width": 1}, 32),
    "timm": ("timm:resnet18", {"stem": "cifar"}, 16),
}
#: fixed large architectures: built once, slow on a CPU
LARGE = {"wrn_34_10": ("wrn_34_10", {}, 32), "dm_wrn_28_10": ("dm_wrn_28_10", {}, 32)}


def test_every_model_is_covered():
    names = {i.name for i in ad.list_components("model") if i.package == "advdistill" and not i.alias_of}
    assert names == set(SMALL) | set(LARGE)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_model_contract(name):
    kind, params, size = SMALL[name]
    check_model_factory(ad.build("model", kind, **params), num_classes=10, in_chans=3, image_size=size)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LARGE))
def test_large_model_contract(name):
    kind, params, size = LARGE[name]
    check_model_factory(ad.build("model", kind, **params), num_classes=10, in_chans=3, image_size=size)
