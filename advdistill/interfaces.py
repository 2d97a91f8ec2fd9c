"""The interfaces of each component kind (DESIGN §2).

Plugins subclass these (or match them structurally). Nothing here imports torch, so that
plugin registration stays cheap; tensor types appear only in annotations.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from attrs import define, field

from advdistill.progress import Progress

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import torch
    from torch import Tensor, nn

    from advdistill.context import StepContext
    from advdistill.evaluation.context import EvalContext

__all__ = [
    "Attack", "AuxLoss", "Callback", "CheckpointState", "Component", "DataSplits", "DatasetInfo", "DatasetSource",
    "Metric", "ModelFactory", "Objective", "Progress", "PublishedAccuracy", "RunState", "Schedule", "StepExtension",
    "StepInfo", "TeacherLoader", "TrainStep",
]


class Component:
    """Common base: every component is built from an attrs ``Config`` instance."""

    #: attrs class validating the recipe table's parameters (``kind`` excluded).
    Config: ClassVar[type | None] = None
    #: optional Python packages the component imports, ``{import name: pip requirement}``, e.g.
    #: ``{"mlflow": "advdistill[mlflow]"}``: ``recipe check`` and ``train`` refuse a recipe using the
    #: component while one is missing, naming what to install
    requires_packages: ClassVar[Mapping[str, str]] = {}

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
    #: PGD-20 (step ε/4), when a source reports it
    pgd20: float | None = None
    #: the citation / URL of the numbers
    source: str = ""
    #: the threat model of the robust numbers (AutoAttack, PGD-20): norm ("linf", "l2", "l1") and ε;
    #: None: not an Lp ball (they are compared with no audit attack)
    norm: str | None = "linf"
    eps: float | None = 8 / 255


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
    #: the current epoch (from 1). Before the first epoch: 0, or on a resume the epoch the
    #: checkpoint holds (the loop continues with the next one)
    epoch: int = 0
    #: this process writes files and logs (rank 0, or the only process)
    is_main: bool = True
    #: models a callback keeps beside the student, by name (the ``ema`` callback adds ``"ema"``, its
    #: averaged weights, in ``on_train_start``); ``periodic_eval`` evaluates them too. Eval mode, frozen.
    models: dict[str, Any] = field(factory=dict)
    #: the training-time teacher audit (the first record of ``metrics.jsonl``), or None
    teacher_audit: dict[str, Any] | None = None
    #: the final evaluation's report (``report.json``), set before ``on_train_end`` when ``[eval] at_end``
    report: dict[str, Any] | None = None


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
    #: detached loss terms of the step (``ctx.log``), device tensors (averaged over processes on log steps)
    logs: dict[str, Tensor]
    #: set on log steps only (the engine synchronises there anyway)
    loss_value: float | None = None
    images_per_s: float | None = None


class CheckpointState:
    """State a component keeps across a resume, saved inside the run's one checkpoint file.

    At every save the engine writes :meth:`state_dict`'s tensors into
    ``checkpoints/last.state.safetensors`` (beside the weights, optimizer and RNG states: one
    atomic file), and each module of :meth:`weight_exports` as ``checkpoints/<name>.safetensors``
    (a plain weights file, like ``last.safetensors``). On ``--resume`` it hands the saved tensors
    back to :meth:`load_state_dict` before the first step — for a callback after its
    ``on_train_start``, so the state can be loaded into what that built. Keep scalars as 0-d
    tensors; names are free (no ``/`` needed).
    """

    def state_dict(self) -> dict[str, Tensor]:
        """The tensors to save with the checkpoint (default: none)."""
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`state_dict` returned (CPU tensors; move them to the device yourself)."""

    def weight_exports(self) -> dict[str, nn.Module]:
        """Modules whose weights the engine exports at each save, as ``checkpoints/<name>.safetensors``.

        ``advdistill eval`` evaluates an export beside ``last`` and ``best`` when it knows the name
        (``ema``); any file there can be evaluated with ``--checkpoint PATH``.
        """
        return {}


class Callback(Component, CheckpointState):
    """Hooks on training events; every method is optional. ``run`` is the :class:`RunState`.

    Callbacks run on the main process only. A callback with state that must survive a resume
    implements :class:`CheckpointState`'s methods.
    """

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
        """Called once after the last epoch and the final evaluation (``run.report``)."""


@define(kw_only=True)
class TrainStep:
    """What a :class:`StepExtension` sees of the training step it acts in."""

    #: the step's context: ``x``, ``y``, ``x_adv`` (set: the attack has run), ``progress``, cached logits
    ctx: StepContext
    #: the bare student (not wrapped by DDP or ``torch.compile``): the parameters the optimizer updates
    model: nn.Module
    optimizer: torch.optim.Optimizer
    #: ``loss_fn(aux)``: the recipe's loss at the current weights (below)
    loss_fn: Callable[[bool], Tensor]

    def loss(self, *, aux: bool = True) -> Tensor:
        """The recipe's loss — the objective, plus the aux losses unless ``aux=False`` — at the
        model's current weights, with gradients, on a fresh context over this step's ``x``, ``y``
        and ``x_adv``: the teacher's outputs are reused, the student runs again (the bare model,
        under the step's autocast, on copies of its buffers: BatchNorm statistics are not updated).
        Nothing is logged, and the step's own loss is not affected.
        """
        return self.loss_fn(aux)


class StepExtension(Component, CheckpointState):
    """Acts inside every training step, around the loss and the update (e.g. ``awp``).

    The step (DESIGN §3), with the extension points in order::

        x_adv = attack(...)                     # the extensions never change x_adv
        before_loss(step)                       # e.g. AWP: perturb the weights
        loss = objective + Σ aux;  loss.backward()
        before_update(step)                     # the parameters' .grad hold the step's gradient
        clip the gradient norm (train.grad_clip);  optimizer.step()
        after_update(step)                      # e.g. AWP: remove the perturbation

    Extensions run on every process (under DDP each acts on its own shard), in ascending
    ``order``, and must keep the step free of host synchronisations (no ``.item()``,
    ``float(tensor)`` or data-dependent ``if`` on device tensors). With a zero learning rate
    the weights after the step must equal those before: an extension changes the update,
    never where the weights end up on its own (:func:`advdistill.testing.check_step_extension`).
    """

    order: ClassVar[int] = 0

    def before_loss(self, step: TrainStep) -> None:
        """After the attack and the teacher's forward, before the loss of the update is computed.

        The parameters' ``.grad`` still hold the previous step's gradient (the engine clears them
        just before the backward): take gradients with ``torch.autograd.grad``.
        """

    def before_update(self, step: TrainStep) -> None:
        """After ``loss.backward()``, before the gradient clipping (``train.grad_clip``) and ``optimizer.step()``."""

    def after_update(self, step: TrainStep) -> None:
        """After ``optimizer.step()``, before the callbacks' ``on_step_end``."""
