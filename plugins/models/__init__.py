"""Architectures: CIFAR students (ResNet-18, MobileNetV2), RobustBench teachers (WideResNet,
DMWideResNet), a ResNet-50 surrogate, small CNNs for CPU-scale work, and any timm model.

Every architecture but ``small_cnn`` is also registered with timm (names prefixed ``adv_``), so
that after importing its module ``timm.create_model("adv_cifar_resnet18", num_classes=100)`` works.
"""

from advdistill import hookimpl
from advdistill_plugins.traits import declaring_traits

_M = "advdistill_plugins.models"
_CONFIG = f"{_M}.config"


@hookimpl
def register_models(register):
    register = declaring_traits(register)
    register("small_cnn", f"{_M}.cnn:SmallCNNFactory", config=f"{_CONFIG}:SmallCNNConfig",
             summary="small VGG-style CNN (two conv stages) for CPU-scale experiments and the demo")
    register("cifar_resnet18", f"{_M}.cifar_resnet:CifarResNet18", config=f"{_CONFIG}:CifarResNetConfig",
             summary="ResNet-18 of the official ARD/RSLAD/IGDM codes (3x3 stem, no max-pool), 11.2 M params")
    register("cifar_mobilenetv2", f"{_M}.cifar_mobilenetv2:CifarMobileNetV2Factory",
             config=f"{_CONFIG}:NormalizationConfig",
             summary="MobileNetV2 of the official RSLAD/ARD/IGDM codes (stride-1 stem), 2.3 M params")
    register("resnet50", f"{_M}.cifar_resnet:CifarResNet50", config=f"{_CONFIG}:CifarResNetConfig",
             summary="CIFAR ResNet-50 (3x3 stem, no max-pool): the transfer-attack surrogate, 23.5 M params")
    register("wrn_34_10", f"{_M}.wide_resnet:WRN3410", config=f"{_CONFIG}:WRN3410Config",
             summary="RobustBench WideResNet-34-10 (LTD teacher, TRADES style), 46.2 M params")
    register("wideresnet", f"{_M}.wide_resnet:WideResNetFactory", config=f"{_CONFIG}:WideResNetConfig",
             summary="RobustBench WideResNet of any depth/width (depth = 28, widen_factor = 10, ...)")
    register("dm_wrn_28_10", f"{_M}.dm_wide_resnet:DMWRN2810", config=f"{_CONFIG}:DMWRN2810Config",
             summary="RobustBench DMWideResNet-28-10, SiLU, CIFAR mean/std inside (BDM-AT, IKL-AT), 36.5 M")
    register("dm_wideresnet", f"{_M}.dm_wide_resnet:DMWideResNetFactory", config=f"{_CONFIG}:DMWideResNetConfig",
             summary="RobustBench DMWideResNet of any depth/width (depth = 70, width = 16, ...)")
    register("timm", f"{_M}.timm_models:TimmModel", config=f"{_CONFIG}:TimmConfig",
             summary="any timm model: kind = \"timm:<name>\" (stem = \"cifar\" for 32x32; never downloads)")
