import pytest
import torch
from arch_reference import count

import advdistill as ad
from advdistill.errors import PluginError, RecipeError


def test_cifar_stem_for_resnets_matches_the_cifar_resnet18_size():
    model = ad.create_model("timm:resnet18", stem="cifar", num_classes=10)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    # same function class as the official ResNet-18: same parameter count
    assert count(model) == count(ad.create_model("cifar_resnet18")) == 11_173_962
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10)


def test_cifar_stem_for_efficientnet_style_models():
    default = ad.create_model("timm:mobilenetv2_050", num_classes=10)
    cifar = ad.create_model("timm:mobilenetv2_050", stem="cifar", num_classes=10)
    assert default.conv_stem.stride == (2, 2) and cifar.conv_stem.stride == (1, 1)
    assert count(default) == count(cifar)
    assert cifar(torch.rand(1, 3, 32, 32)).shape == (1, 10)


def test_cifar_stem_refuses_unknown_families():
    with pytest.raises(PluginError, match=r"stem = \"cifar\" knows ResNet-style.*VisionTransformer"):
        ad.create_model("timm:vit_tiny_patch16_224", stem="cifar", kwargs={"img_size": 32, "patch_size": 4})


def test_unknown_names_pretrained_and_bad_stem_are_clear_errors():
    with pytest.raises(PluginError, match="timm has no model 'resnet19'"):
        ad.create_model("timm:resnet19")
    with pytest.raises(PluginError, match="pretrained weights would be downloaded"):
        ad.create_model("timm:resnet18", kwargs={"pretrained": True})
    with pytest.raises(RecipeError, match="'stem' must be one of 'default', 'cifar'"):
        ad.build("model", "timm:resnet18", stem="cifar10")


def test_timm_kwargs_and_normalization_pass_through():
    model = ad.create_model("timm:resnet18", kwargs={"drop_rate": 0.25}, mean=[0.5], std=[0.5], in_chans=1)
    assert model.model.drop_rate == 0.25 and model.model.conv1.in_channels == 1
    x = torch.rand(1, 1, 64, 64)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.model(2 * x - 1))
