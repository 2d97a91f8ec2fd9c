import timm
import torch
from arch_reference import MOBILENETV2_CIFAR, calibrate_bn, count, mobilenetv2_forward

import advdistill as ad
from advdistill_plugins.models.cifar_mobilenetv2 import CifarMobileNetV2, InvertedResidual


def test_size_matches_the_official_student():
    model = ad.create_model("cifar_mobilenetv2", num_classes=10)
    assert isinstance(model, CifarMobileNetV2)
    assert count(model) == 2_296_922  # kuangliu / RSLAD MobileNetV2, 10 classes
    assert count(ad.create_model("cifar_mobilenetv2", num_classes=100)) == 2_296_922 + 90 * 1281


def test_blocks_follow_the_cifar_table():
    model = ad.create_model("cifar_mobilenetv2")
    blocks = [m for m in model.layers if isinstance(m, InvertedResidual)]
    expected = [(c, first if j == 0 else 1) for _, c, n, first in MOBILENETV2_CIFAR for j in range(n)]
    assert [(b.conv3.out_channels, b.conv2.stride[0]) for b in blocks] == expected
    # stride-1 stem and a stride-1 second stage: 32x32 inputs end on a 4x4 map
    assert model.conv1.stride == (1, 1) and sum(s == 2 for _, s in expected) == 3
    # projection shortcut exactly on stride-1 blocks that change width
    keys = set(model.state_dict())
    with_proj = {i for i, b in enumerate(blocks) if f"layers.{i}.shortcut.0.weight" in keys}
    cin = [32] + [c for c, _ in expected[:-1]]
    assert with_proj == {i for i, ((c, s), ci) in enumerate(zip(expected, cin)) if s == 1 and ci != c}


def test_forward_equals_an_independent_functional_implementation():
    torch.manual_seed(0)
    model = calibrate_bn(ad.create_model("cifar_mobilenetv2", num_classes=6))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), mobilenetv2_forward(model.state_dict(), x), rtol=1e-4, atol=1e-5)


def test_registered_with_timm():
    assert timm.is_model("adv_cifar_mobilenetv2")
    assert timm.create_model("adv_cifar_mobilenetv2", num_classes=100).linear.out_features == 100
