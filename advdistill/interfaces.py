"""The interfaces of each component kind (DESIGN §2).

Plugins subclass these (or match them structurally). Nothing here imports torch, so that
plugin registration stays cheap; tensor types appear only in annotations.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from attrs import define

from advdistill.progress import Progress

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from torch import Tensor, nn

    from advdistill.context import StepContext
    from advdistill.evaluation.context import EvalContext

__all__ = [
    "Attack", "AuxLoss", "Callback", "Component", "DataSplits", "DatasetInfo", "DatasetSource", "Metric",
    "ModelFactory", "Objective", "Progress", "PublishedAccuracy", "RunState", "Schedule", "StepInfo",
    "TeacherLoader",
]


class Component:
    """Common base: every component is built from an attrs ``Config`` instance."""

    #: attrs class validating the recipe table's parameters (``kind`` excluded).
    Config: ClassVar[type | None] = None

    def __init__(self, config: Any = None) -> None:
        self.config = config

    def __repr__(self) -> str:
        """``PGD(norm='linf', eps=0.0314, ..., steps=20)``: the class and its config's values."""
        config = self.config
        if config is None:
            return f"{type(self).__name__}()"
        if not attrs.has(type(config)):
            return f"{type(self).__name__}(config={config!r})"
        values = ", ".join(f"{a.name}={getattr(config, a.name)!r}" for a in attrs.fields(type(config)) if a.repr)
        return f"{type(self).__name__}({values})"


class Attack(Component, abc.ABC):
    """Produces adversarial inputs inside the ε-ball around ``x``, clamped to [0, 1].

    Contract (checked by :func:`advdistill.testing.check_attack`): the result is detached,
    lies in the ball and in [0, 1]; the models' train/eval modes, their parameters'
    ``requires_grad`` flags and gradients, and the global RNG are left as they were.
    """

    #: the attack needs a teacher (``teacher=`` must not be None)
    requires_teacher: ClassVar[bool] = False

    @abc.abstractmethod
    def perturb(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        *,
        teacher: nn.Module | None = None,
        context: StepContext | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Return ``x_adv`` (B, C, H, W) for images ``x`` in [0, 1] and labels ``y`` (B,).

        :param context: the training step's context, when called inside training; it caches
            teacher logits (``context.teacher_logits(0.0)`` is the teacher on clean inputs).
        :param generator: source of the random start; the global RNG must not be used.
        """


class Objective(Component, abc.ABC):
    """The base training loss L_AD / L_AT of one step (DESIGN §3)."""

    requires_teacher: ClassVar[bool] = False

    def teacher_points(self) -> tuple[float, ...]:
        """Coefficients ``c`` of the points ``x + c·δ`` whose teacher logits this loss reads.

        The engine computes the union over the objective and every aux loss in one batched,
        no-grad teacher forward before calling them (``0.0`` is clean, ``1.0`` is ``x_adv``).
        """
        return ()

    @abc.abstractmethod
    def __call__(self, ctx: StepContext) -> Tensor:
        """Return the scalar loss of the step; may write detached terms to ``ctx.logs``."""


class AuxLoss(Objective, abc.ABC):
    """An auxiliary loss added to the objective (0..n per recipe), e.g. IGDM."""


class Schedule(Component, abc.ABC):
    """A scalar as a function of training progress (loss weights, learning rates)."""

    @abc.abstractmethod
    def __call__(self, progress: Progress) -> float:
        """The value at ``progress``."""


class ModelFactory(Component, abc.ABC):
    """Builds an architecture mapping images in [0, 1] to logits."""

    @abc.abstractmethod
    def build(self, num_classes: int, in_chans: int) -> nn.Module:
        """A freshly initialised model for ``num_classes`` classes and ``in_chans`` channels."""


@define(frozen=True)
class PublishedAccuracy:
    """A teacher's accuracies (%) on its full test set as published, and where they were published."""

    clean: float
    autoattack: float | None = None
    #: PGD-20 (Linf 8/255, step 2/255), when a source reports it
    pgd20: float | None = None
    #: the citation / URL of the numbers
    source: str = ""


class TeacherLoader(Component, abc.ABC):
    """Loads a trained teacher: frozen, in eval mode, taking inputs in [0, 1]."""

    @abc.abstractmethod
    def load(self, *, num_classes: int, in_chans: int) -> nn.Module:
        """Return the teacher for a data set of ``num_classes`` classes and ``in_chans`` channels.

        Relative paths in the recipe are relative to the working directory.
        """

    def published_accuracy(self) -> PublishedAccuracy | None:
        """The accuracies published for this teacher, which the teacher audit compares with; None if unknown."""
        return None

    def check_files(self) -> None:
        """Raise the error :meth:`load` would raise for a missing (or refused) weight file, without
        reading the weights or building the model; ``advdistill recipe check`` calls it. Default: no files."""


@define(frozen=True)
class DatasetInfo:
    """Static facts about a data set that models and attacks need."""

    name: str
    num_classes: int
    in_chans: int
    image_size: tuple[int, int]
    class_names: tuple[str, ...] = ()


@define(frozen=True)
class DataSplits:
    """A data set held in memory: uint8 images (N, C, H, W) and int64 labels (N,).

    A :class:`DatasetSource` returns the training and test splits; the core then holds the
    validation split out of the training images (``[data] val_size``, see
    :mod:`advdistill.val_split`), so that ``train_*`` and ``val_*`` never share an image.
    ``val_x``/``val_y`` are None until then, and empty tensors when ``val_size = 0``.
    """

    info: DatasetInfo
    train_x: Any
    train_y: Any
    test_x: Any
    test_y: Any
    val_x: Any = None
    val_y: Any = None

    @property
    def n_val(self) -> int:
        """The number of validation images (0 without a validation split)."""
        return 0 if self.val_x is None else int(self.val_x.shape[0])


class DatasetSource(Component, abc.ABC):
    """Reads a data set from local files (never downloads)."""

    #: training images held out as the validation split when the recipe's [data] table gives
    #: no ``val_size`` (class-stratified, see :mod:`advdistill.val_split`); 0: none
    default_val_size: ClassVar[int] = 1000

    @abc.abstractmethod
    def load(self) -> DataSplits:
        """Return the train and test splits (relative paths: to the working directory).

        Leave ``val_x``/``val_y`` unset: the core holds the validation split out of the
        training images.
        """

    def check_files(self) -> None:
        """Raise the error :meth:`load` would raise for a missing file, without reading the data
        (existence, not content); ``advdistill recipe check`` calls it. Default: no files."""


class Metric(Component, abc.ABC):
    """An evaluation metric; returns report keys (accuracies in percent)."""

    #: the metric needs the teacher (e.g. gradient alignment)
    requires_teacher: ClassVar[bool] = False
    #: every number the metric returns is a mean over the evaluated images (accuracies in percent
    #: included; lists and tables of such means too): a multi-process evaluation (torchrun) gives
    #: each process a part of the test set and averages the parts, weighted by their sizes. False:
    #: the metric runs on the whole test set in process 0 while the others wait
    mean_over_images: ClassVar[bool] = False

    @abc.abstractmethod
    def evaluate(self, ctx: EvalContext) -> Mapping[str, Any]:
        """Evaluate ``ctx.model`` on ``ctx.batches()`` and return ``{report_key: value}``."""


@define(kw_only=True)
class RunState:
    """What a callback sees of the run it is called from (the engine updates ``epoch``).

    Read it; do not replace its fields. ``student`` is the bare model (not wrapped by DDP),
    in train mode during training: a callback that evaluates it switches to eval mode for
    the evaluation and back (``advdistill.torch_utils.module_mode``).
    """

    #: the resolved recipe (``recipe.name``, ``recipe.attack``, ``recipe.eval``, ...)
    recipe: Any
    #: the run directory
    out_dir: Path
    device: torch.device
    student: nn.Module
    #: the frozen teacher, or None
    teacher: nn.Module | None
    #: the data set (:class:`DataSplits`): training and validation images as uint8, labels.
    #: The test split is withheld (reading it raises TrainingError): only the final
    #: evaluation reads it, so that nothing chosen during training has seen a test image.
    data: DataSplits
    epochs: int
    steps_per_epoch: int
    #: the current epoch (from 1); 0 before the first
    epoch: int = 0
    #: this process writes files and logs (rank 0, or the only process)
    is_main: bool = True


@define
class StepInfo:
    """What a callback's ``on_step_end`` receives after each optimizer step."""

    epoch: int
    step_in_epoch: int
    steps_per_epoch: int
    global_step: int
    #: the step's loss as a device tensor: reading it (``float(loss)``) is a host synchronisation
    loss: Tensor
    lr: float
    #: detached loss terms of the step (``ctx.log``), device tensors
    logs: dict[str, Tensor]
    #: set on log steps only (the engine synchronises there anyway)
    loss_value: float | None = None
    images_per_s: float | None = None


class Callback(Component):
    """Hooks on training events; every method is optional. ``run`` is the :class:`RunState`."""

    #: callbacks run in ascending order (display callbacks use a high order to see every result)
    order: ClassVar[int] = 0
    #: the callback reads the validation split (``run.data.val_x``): training refuses a recipe
    #: with ``[data] val_size = 0``
    requires_val: ClassVar[bool] = False

    def on_train_start(self, run: RunState) -> None:
        """Called once before the first epoch (also when resuming)."""

    def on_epoch_start(self, run: RunState, epoch: int) -> None:
        """Called before each epoch."""

    def on_step_end(self, run: RunState, step: StepInfo) -> None:
        """Called after each optimizer step; ``step.loss`` is a device tensor (no sync)."""

    def on_epoch_end(self, run: RunState, record: dict[str, Any]) -> None:
        """Called after each epoch; may add entries to ``record`` (e.g. evaluation results)."""

    def on_train_end(self, run: RunState) -> None:
        """Called once after the last epoch."""
