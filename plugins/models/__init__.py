"""Architectures: small CNNs for CPU-scale work, CIFAR ResNet-18, and any timm model."""

from advdistill import hookimpl


@hookimpl
def register_models(register):
    register("small_cnn", "advdistill_plugins.models.cnn:SmallCNNFactory",
             summary="small VGG-style CNN (two conv stages) for CPU-scale experiments and the demo")
    register("cifar_resnet18", "advdistill_plugins.models.timm_models:CifarResNet18",
             summary="ResNet-18 for 32x32 inputs (3x3 stem, no max-pool), built by timm")
    register("timm", "advdistill_plugins.models.timm_models:TimmModel",
             summary="any timm architecture: kind = \"timm:<name>\" (never downloads weights)")
