import pytest
import timm
import torch
from arch_reference import calibrate_bn, cifar_resnet_forward, count

import advdistill as ad
from advdistill.errors import RecipeError
from advdistill_plugins.models.cifar_resnet import Bottleneck, CifarResNet
from advdistill_plugins.models.common import Normalized


def test_resnet18_matches_the_official_student_size_and_keys():
    model = ad.create_model("cifar_resnet18", num_classes=10)
    assert isinstance(model, CifarResNet)
    assert count(model) == 11_173_962  # kuangliu / ARD / RSLAD ResNet-18, 10 classes
    # 100 classes: only the classifier grows, by 90 * (512 + 1)
    assert count(ad.create_model("cifar_resnet18", num_classes=100)) == 11_173_962 + 90 * 513
    keys = set(model.state_dict())
    assert {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.shortcut.0.weight",
            "layer2.0.shortcut.1.running_mean", "layer4.1.bn2.bias", "linear.weight", "linear.bias"} <= keys
    # identity shortcuts carry no parameters; there is no max-pool and the stem is 3x3 stride 1
    assert not any(k.startswith(("layer1.0.shortcut", "layer2.1.shortcut")) for k in keys)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)


def test_resnet18_initialisation_is_pytorch_default_as_the_official_code():
    model = ad.create_model("cifar_resnet18")
    # timm's resnet zero-initialises the last BN of every block; the official students do not
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    # PyTorch's default conv init is kaiming_uniform(a=sqrt(5)): |w| <= 1/sqrt(fan_in)
    w = model.layer3[0].conv1.weight
    assert w.abs().max() <= 1 / (w[0].numel() ** 0.5) + 1e-7


def test_resnet18_forward_equals_an_independent_functional_implementation():
    torch.manual_seed(0)
    model = calibrate_bn(ad.create_model("cifar_resnet18", num_classes=7))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ours = model(x)
        ref = cifar_resnet_forward(model.state_dict(), x, (2, 2, 2, 2), bottleneck=False)
    assert ours.shape == (1, 7)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_bottleneck_forward_equals_an_independent_functional_implementation():
    # one Bottleneck per stage: the ResNet-50 code path at a fraction of the cost
    torch.manual_seed(0)
    model = calibrate_bn(CifarResNet(Bottleneck, (1, 1, 1, 1), num_classes=5))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), cifar_resnet_forward(model.state_dict(), x, (1, 1, 1, 1), True),
                                   rtol=1e-4, atol=1e-5)


def test_resnet50_surrogate_size():
    assert count(ad.create_model("resnet50")) == 23_520_842  # kuangliu ResNet-50, 10 classes


def test_registered_with_timm():
    assert timm.is_model("adv_cifar_resnet18") and timm.is_model("adv_cifar_resnet50")
    model = timm.create_model("adv_cifar_resnet18", num_classes=100)
    assert model.linear.out_features == 100 and count(model) == 11_220_132
    one_channel = timm.create_model("adv_cifar_resnet18", num_classes=10, in_chans=1)
    assert one_channel.conv1.in_channels == 1


def test_normalization_inside_the_model_keeps_the_keys():
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    plain = calibrate_bn(ad.create_model("cifar_resnet18"))
    wrapped = ad.create_model("cifar_resnet18", mean=mean, std=std)
    assert isinstance(wrapped, Normalized)
    wrapped.load_state_dict(plain.state_dict())  # same keys, strict
    assert list(wrapped.state_dict()) == list(plain.state_dict())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = plain((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
        torch.testing.assert_close(wrapped.eval()(x), expected)


def test_bad_normalization_is_a_recipe_error():
    with pytest.raises(RecipeError, match="both 'mean' and 'std'"):
        ad.create_model("cifar_resnet18", mean=[0.5, 0.5, 0.5])
    with pytest.raises(RecipeError, match="1 or 3 values"):
        ad.create_model("cifar_resnet18", mean=[0.5, 0.5], std=[0.2, 0.2])
    with pytest.raises(RecipeError, match=r"'std' must be > 0, got 0\.0"):
        ad.create_model("cifar_resnet18", mean=[0.5], std=[0.0])


@pytest.mark.parametrize("stem,stride", [("tiny", 1), ("tiny_stride2", 2)])
def test_tiny_imagenet_stems_equal_an_independent_implementation_on_64x64(stem, stride):
    torch.manual_seed(0)
    model = calibrate_bn(ad.create_model("cifar_resnet18", num_classes=200, stem=stem))
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (stride, stride)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ours = model(x)
        ref = cifar_resnet_forward(model.state_dict(), x, (2, 2, 2, 2), bottleneck=False, stem_stride=stride)
    assert ours.shape == (2, 200)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_every_stem_has_the_same_parameters_and_keys():
    cifar = ad.create_model("cifar_resnet18", num_classes=200)
    # 200 classes: the 10-class count plus 190 * (512 + 1) classifier parameters
    assert count(cifar) == 11_173_962 + 190 * 513 == 11_271_432
    for stem in ("tiny", "tiny_stride2"):
        other = ad.create_model("cifar_resnet18", num_classes=200, stem=stem)
        assert count(other) == count(cifar)
        other.load_state_dict(cifar.state_dict())  # strict: checkpoints move between stems
    assert count(ad.create_model("resnet50", stem="tiny")) == 23_520_842


def test_tiny_stem_on_32x32_is_the_official_network():
    # on 32x32 inputs the last map is 4x4, so the global pool equals the official 4x4 pool
    torch.manual_seed(0)
    cifar = calibrate_bn(ad.create_model("cifar_resnet18", num_classes=10))
    tiny = ad.create_model("cifar_resnet18", num_classes=10, stem="tiny")
    tiny.load_state_dict(cifar.state_dict())  # BN running statistics included
    tiny.eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(tiny(x), cifar(x))


def test_cifar_stem_on_64x64_images_says_which_stem_to_use():
    model = ad.create_model("cifar_resnet18", num_classes=200)
    with pytest.raises(RecipeError, match=r'got \(64, 64\).*stem = "tiny"'):
        model(torch.rand(1, 3, 64, 64))
    with pytest.raises(RecipeError, match="Did you mean 'tiny'"):
        ad.create_model("cifar_resnet18", stem="tin")
