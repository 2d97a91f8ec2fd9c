"""The config classes of the data sets: what a ``[data]`` table may set besides the core's keys.

Kept apart from the components, without torch, so that resolving a recipe (``advdistill recipe
show/check``) validates a table without importing the component's module.
"""

from __future__ import annotations

from attrs import define, field
from attrs.validators import instance_of

from advdistill.config import as_float, in_range, integer, optional, valid_seed


@define(frozen=True, kw_only=True)
class MNIST5kConfig:
    #: share of each class's 500 digits held out as the test set (0.2: 4,000 / 1,000)
    test_fraction: float = field(
        default=0.2, converter=as_float, validator=in_range(0.0, 1.0, low_open=True, high_open=True)
    )


@define(frozen=True, kw_only=True)
class CIFARConfig:
    #: the directory holding cifar-10-batches-py/ (or cifar-100-python/), or that directory itself;
    #: environment variables and ~ are expanded; relative paths are relative to the working directory
    root: str = field(default="data", validator=instance_of(str))


@define(frozen=True, kw_only=True)
class SVHNConfig:
    #: the directory holding svhn/ (or the .mat files themselves, as torchvision leaves them);
    #: environment variables and ~ are expanded; relative paths are relative to the working directory
    root: str = field(default="data", validator=instance_of(str))
    #: append the 531,131 easier "extra" digits (extra_32x32.mat) to the training set
    use_extra: bool = field(default=False, validator=instance_of(bool))


@define(frozen=True, kw_only=True)
class TinyImageNetConfig:
    #: the directory holding tiny-imagenet-200/, or that directory itself; environment variables
    #: and ~ are expanded; relative paths are relative to the working directory
    root: str = field(default="data", validator=instance_of(str))
    #: keep the decoded images in a cache file and reuse it while the folder is unchanged
    cache: bool = field(default=True, validator=instance_of(bool))
    #: where the cache file goes; default: beside tiny-imagenet-200/
    cache_dir: str | None = field(default=None, validator=optional(instance_of(str)))


@define(frozen=True, kw_only=True)
class IdxConfig:
    #: the directory holding the four idx files, or its parent (then the files are in
    #: {root}/mnist or {root}/fashion-mnist); ~ and $VARS are expanded; relative to the working directory
    root: str = field(default="data", validator=instance_of(str))
    #: train on this many training images only, the same share of every class; None = all
    train_subset: int | None = field(default=None, validator=optional(integer(1)))
    #: which images the subset takes; independent of train.seed, so every run of a study sees the same subset
    subset_seed: int = field(default=0, validator=valid_seed)


@define(frozen=True, kw_only=True)
class SyntheticConfig:
    #: training images
    n_train: int = field(default=256, validator=integer(1))
    #: test images
    n_test: int = field(default=64, validator=integer(1))
    #: classes (each a fixed random pattern plus noise)
    num_classes: int = field(default=10, validator=integer(2))
    #: image channels
    in_chans: int = field(default=3, validator=integer(1))
    #: image height and width in pixels
    image_size: int = field(default=32, validator=integer(4))
    #: seeds the patterns, the noise and the labels
    seed: int = field(default=0, validator=valid_seed)
