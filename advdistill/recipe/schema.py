"""The recipe's structure: core sections (attrs) and component tables resolved via the registry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import define, field
from attrs.validators import instance_of

from advdistill.config import (
    ScheduledValue,
    as_float,
    as_float_tuple,
    build_config,
    config_to_dict,
    each,
    in_range,
    integer,
    one_of,
    optional,
    scheduled,
    valid_seed,
    validated_config,
)
from advdistill.errors import PluginError, RecipeError, did_you_mean
from advdistill.recipe.loading import Provenance

SCHEMA_VERSION = 1
#: ``[train] compile_mode``: torch.compile modes ("reduce-overhead" replays CUDA graphs)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: ``[train] optimizer_impl``: "auto" is PyTorch's choice (foreach on CUDA, a for-loop on CPU)
OPTIMIZER_IMPLS = ("auto", "foreach", "fused", "for_loop")


@define(frozen=True, kw_only=True)
class TrainConfig:
    """``[train]``: the training loop."""

    #: training epochs (counted from 1)
    epochs: int = field(default=1, validator=integer(1))
    #: images per optimizer step, over all processes (the global batch): under torchrun each of N
    #: processes takes batch_size / N of every batch, so batch_size must divide by N
    batch_size: int = field(default=128, validator=integer(1))
    #: images per step and process instead: N processes make N × this per optimizer step; none:
    #: batch_size is the global batch
    batch_size_per_process: int | None = field(default=None, validator=optional(integer(1)))
    #: seeds the initialisation, the data order, the augmentation and the attacks' random starts
    seed: int = field(default=0, validator=valid_seed)
    #: "auto" (CUDA when present), "cpu", "cuda" or "cuda:N"
    device: str = field(default="auto", validator=instance_of(str))
    #: bf16 autocast on CUDA (ignored on CPU)
    amp: bool = field(default=True, validator=instance_of(bool))
    #: channels_last memory format on CUDA (ignored on CPU)
    channels_last: bool = field(default=True, validator=instance_of(bool))
    #: the student's BatchNorm mode while the inner maximization runs ("eval" as the official codes)
    attack_bn: str = field(default="eval", validator=one_of("eval", "train"))
    #: on the device: "crop" (random crop with crop_padding), "flip" (horizontal), "crop_flip" (both)
    augment: str = field(default="none", validator=one_of("none", "crop", "flip", "crop_flip"))
    #: zero padding of the random crop, in pixels
    crop_padding: int = field(default=4, validator=integer(0))
    #: steps between log records (the only host synchronisations of the loop)
    log_every: int = field(default=50, validator=integer(1))
    #: stop an epoch after this many steps (quick checks); None = the whole epoch
    max_steps_per_epoch: int | None = field(default=None, validator=optional(integer(1)))
    #: clip the gradient norm to this; none: no clipping
    grad_clip: float | None = field(
        default=None, converter=attrs.converters.optional(as_float), validator=optional(in_range(0.0, low_open=True))
    )
    #: abort when the loss exceeds this (divergence guard); non-finite losses always abort
    max_loss: float | None = field(
        default=1e4, converter=attrs.converters.optional(as_float), validator=optional(in_range(0.0, low_open=True))
    )
    #: the periodic-evaluation key that decides checkpoints/best (higher is better)
    best_metric: str = field(default="pgd", validator=instance_of(str))
    #: drop the last incomplete batch of each epoch
    drop_last: bool = field(default=True, validator=instance_of(bool))
    # -- speed settings (docs/recipes.md, "Speed"); all off by default --------------------------
    #: torch.compile the student (attack and loss forwards), static shapes
    compile: bool = field(default=False, validator=instance_of(bool))
    #: the torch.compile mode of `compile` and `compile_teacher` ("reduce-overhead": CUDA graphs)
    compile_mode: str = field(default="default", validator=one_of(*COMPILE_MODES))
    #: torch.compile the teacher used by the training step
    compile_teacher: bool = field(default=False, validator=instance_of(bool))
    #: CUDA: the training step's teacher keeps bf16 conv/linear weights (evaluation keeps float32)
    teacher_bf16: bool = field(default=False, validator=instance_of(bool))
    #: the optimizer's implementation: "auto" (PyTorch's choice), "foreach", "fused", "for_loop"
    optimizer_impl: str = field(default="auto", validator=one_of(*OPTIMIZER_IMPLS))
    #: CUDA: torch.backends.cudnn.benchmark (autotuned convolution algorithms)
    cudnn_benchmark: bool = field(default=False, validator=instance_of(bool))
    #: under torchrun: minutes a process waits for the others (at a step, an epoch's end, the final
    #: evaluation) before it fails with a timeout; raise it when process 0 does long work alone
    dist_timeout_min: float = field(default=60.0, converter=as_float, validator=in_range(0.0, low_open=True))
    #: check the teacher at start (clean accuracy on 1,000 test images, PGD-20 on 100) and refuse a
    #: broken one (near chance, or below its published clean accuracy); the numbers go to metrics.jsonl
    audit_teacher: bool = field(default=True, validator=instance_of(bool))


@define(frozen=True, kw_only=True)
class OptimConfig:
    """``[optim]``: the student's optimizer; ``lr`` may be a schedule table."""

    #: the optimizer
    kind: str = field(default="sgd", validator=one_of("sgd", "adamw"))
    #: the learning rate: a number or a schedule table (set per step)
    lr: ScheduledValue = scheduled(0.1, low=0.0)
    #: SGD momentum
    momentum: float = field(default=0.9, converter=as_float, validator=in_range(0.0, 1.0))
    #: SGD Nesterov momentum
    nesterov: bool = field(default=False, validator=instance_of(bool))
    #: L2 weight decay (AdamW: decoupled)
    weight_decay: float = field(default=2e-4, converter=as_float, validator=in_range(0.0, 1.0))
    #: AdamW's betas
    betas: tuple[float, ...] = field(
        default=(0.9, 0.999), converter=as_float_tuple, validator=each(in_range(0.0, 1.0, high_open=True), length=2)
    )


@define(frozen=True)
class ComponentRef:
    """A resolved component table: ``kind`` names a registered component, ``config`` its params."""

    section: str  # e.g. "attack", "aux.igdm"
    component_kind: str  # registry kind, e.g. "attack"
    name: str
    config: Any = field(eq=False)

    def build(self) -> Any:
        from advdistill.plugins import get_registry

        return get_registry().get(self.component_kind, self.name)(self.config)

    def load(self) -> Any:
        """The component class (or factory) itself."""
        from advdistill.plugins import get_registry

        return get_registry().get(self.component_kind, self.name)

    def trait(self, name: str) -> Any:
        """A class attribute of the component (``requires_teacher``, ...; :data:`advdistill.registry.TRAITS`),
        without importing it when its plugin declares it."""
        from advdistill.plugins import get_registry

        return get_registry().trait(self.component_kind, self.name, name)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.name, **config_to_dict(self.config)}


@define(frozen=True, kw_only=True)
class ValSplit:
    """``[data]``: the core's keys of the data table (the rest are the data set's): the validation split.

    Core keys of the ``[data]`` table (the data set's own config never sees them); see
    :mod:`advdistill.val_split`. ``val_size`` left out takes the data set's ``default_val_size``.
    """

    #: training images held out (class-stratified); 0: no validation split
    val_size: int = field(
        default=0, validator=integer(0),
        metadata={"reference_default": "the data set's: 1000 (500 for mnist5k, 0 for synthetic)"},
    )
    #: which images: a seed of its own, independent of train.seed
    val_seed: int = field(default=0, validator=valid_seed)


#: the [eval.metrics] of a recipe that names none
_DEFAULT_METRICS = {"clean": {"kind": "clean"}, "pgd20": {"kind": "pgd"}}
_DEFAULT_METRICS_TEXT = " + ".join(f'{label} = {{kind = "{t["kind"]}"}}' for label, t in _DEFAULT_METRICS.items())


#: the evaluation sanity checks, in report order (docs/metrics.md, "Sanity checks")
CHECK_NAMES = (
    "ordering", "more_steps", "unbounded", "black_box", "zero_gradient", "deterministic", "logits",
    "inference_gradients",
)


def _check_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise TypeError(f"expected a list of check names such as [\"black_box\"], got {value!r}")
    names = tuple(value)
    for name in names:
        if name not in CHECK_NAMES:
            raise ValueError(f"unknown check {name!r}.{did_you_mean(str(name), CHECK_NAMES)} "
                             f"Checks: {', '.join(CHECK_NAMES)}.")
    return names


@define(frozen=True, kw_only=True)
class ChecksConfig:
    """``[eval.checks]``: the evaluation sanity checks (Carlini et al. 2019; AutoAttack's flags).

    ``[eval] checks = false`` turns them off, ``checks = true`` keeps these defaults; a table
    changes single settings. The defaults cost a few seconds per checkpoint on the demo's model
    on a 2-core CPU (docs/metrics.md, "Sanity checks").
    """

    #: run the checks after every evaluation (`advdistill eval --no-checks` skips them once)
    enabled: bool = field(default=True, validator=instance_of(bool))
    #: checks not to run, by name: ordering, more_steps, unbounded, black_box, zero_gradient,
    #: deterministic, logits, inference_gradients
    skip: tuple[str, ...] = field(default=(), converter=_check_names)
    #: the checks that run attacks use the first n evaluated test images (ordering uses all)
    n: int = field(default=100, validator=integer(1))
    #: a stronger or black-box attack is flagged when it lowers accuracy by more than this many
    #: percentage points AND the drop is beyond seed noise (see alpha)
    margin: float = field(default=1.0, converter=as_float, validator=in_range(0.0, 100.0))
    #: significance level of the one-sided exact sign test on the images two attacks disagree on
    alpha: float = field(default=0.05, converter=as_float, validator=in_range(0.0, 1.0, low_open=True, high_open=True))
    #: more_steps: the PGD metric's steps times this factor ...
    steps_factor: int = field(default=5, validator=integer(1))
    #: ... and this many random restarts (an image is robust only if it survives every one)
    restarts: int = field(default=1, validator=integer(1))
    #: unbounded: a Linf PGD with this radius (1 = any image can be reached), no random start
    unbounded_eps: float = field(default=1.0, converter=as_float, validator=in_range(0.0, low_open=True))
    #: unbounded: its steps (step size 2.5 * unbounded_eps / unbounded_steps)
    unbounded_steps: int = field(default=10, validator=integer(1))
    #: unbounded: flagged when the accuracy (%) stays above this
    unbounded_max_accuracy: float = field(default=1.0, converter=as_float, validator=in_range(0.0, 100.0))
    #: black_box: the attacks: "auto" (transfer from the teacher when the recipe has one, else Square),
    #: "square", "transfer" or "both"
    black_box: str = field(default="auto", validator=one_of("auto", "square", "transfer", "both"))
    #: black_box: queries of the Square attack (AutoAttack's implementation)
    square_queries: int = field(default=100, validator=integer(1))
    #: zero_gradient: an input gradient counts as zero when its L1 norm is <= this (0: exactly zero,
    #: AutoAttack's test)
    zero_grad_tol: float = field(default=0.0, converter=as_float, validator=in_range(0.0))
    #: zero_gradient: flagged when more than this share (%) of the images has a zero gradient
    zero_grad_max_share: float = field(default=1.0, converter=as_float, validator=in_range(0.0, 100.0))
    #: deterministic: forward passes compared (AutoAttack's randomized-defense test)
    repeats: int = field(default=3, validator=integer(2))
    #: deterministic: flagged when normalized logits of two passes differ by more than this (L2)
    determinism_tol: float = field(default=1e-4, converter=as_float, validator=in_range(0.0))

    def selects(self, name: str) -> bool:
        """Whether check ``name`` runs when the checks run (``enabled`` decides whether they run)."""
        return name not in self.skip


def _checks(value: Any) -> ChecksConfig:
    """``checks = true | false`` or a table of :class:`ChecksConfig` settings."""
    if isinstance(value, ChecksConfig):
        return value
    if isinstance(value, bool):
        return ChecksConfig(enabled=value)
    if isinstance(value, Mapping):
        return build_config(ChecksConfig, value, where=lambda key: f"checks.{key}" if key else "checks")
    raise TypeError(f"expected true, false or a table of check settings ([eval.checks] n = 200, ...), got {value!r}")


@define(frozen=True, kw_only=True)
class EvalConfig:
    """``[eval]``: the evaluation suite run at the end of training and by ``advdistill eval``."""

    #: evaluation batch size (per process under torchrun)
    batch_size: int = field(default=256, validator=integer(1))
    #: evaluate the first N test images only
    limit: int | None = field(default=None, validator=optional(integer(1)))
    #: run the suite after training and write report.json / report.md
    at_end: bool = field(default=True, validator=instance_of(bool))
    #: the checkpoint whose numbers are the report's "metrics" ("best" and "ema" fall back to "last" when
    #: the run has none); `advdistill eval RUN` and the end-of-training evaluation evaluate every one the run has
    checkpoint: str = field(default="last", validator=one_of("last", "best", "ema"))
    #: seeds the random starts of the evaluation attacks
    seed: int = field(default=0, validator=valid_seed)
    #: the evaluation sanity checks: true (default settings), false, or a table of settings
    #: ([eval.checks], see ChecksConfig); written to report.json "checks" and report.md
    checks: ChecksConfig = field(factory=ChecksConfig, converter=_checks)
    #: the suite: [eval.metrics.<label>] tables of metric components
    metrics: dict[str, ComponentRef] = field(factory=dict, metadata={"reference_default": _DEFAULT_METRICS_TEXT})


@define(frozen=True, kw_only=True)
class Recipe:
    """A fully resolved, validated recipe."""

    name: str
    description: str
    data: ComponentRef
    student: ComponentRef
    teacher: ComponentRef | None
    attack: ComponentRef | None
    objective: ComponentRef | None
    aux: dict[str, ComponentRef]
    optim: OptimConfig
    train: TrainConfig
    eval: EvalConfig
    callbacks: dict[str, ComponentRef]
    #: [data] val_size / val_seed
    val: ValSplit = field(factory=ValSplit)
    #: [step_extensions.<label>]: code acting inside the training step (e.g. AWP)
    step_extensions: dict[str, ComponentRef] = field(factory=dict)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain JSON data (defaults filled in)."""

        def labeled(refs: Mapping[str, ComponentRef]) -> dict[str, Any]:
            return {label: ref.to_json() for label, ref in refs.items()}

        out: dict[str, Any] = {"schema": SCHEMA_VERSION, "name": self.name}
        if self.description:
            out["description"] = self.description
        out["data"] = {**self.data.to_json(), **config_to_dict(self.val)}
        out["student"] = self.student.to_json()
        for key in ("teacher", "attack", "objective"):
            ref = getattr(self, key)
            if ref is not None:
                out[key] = ref.to_json()
        out["aux"] = labeled(self.aux)
        out["optim"] = config_to_dict(self.optim)
        out["train"] = config_to_dict(self.train)
        ev = config_to_dict(attrs.evolve(self.eval, metrics={}))
        ev["metrics"] = labeled(self.eval.metrics)
        out["eval"] = ev
        out["callbacks"] = labeled(self.callbacks)
        for label in _DEFAULT_CALLBACKS:  # a removed default must stay removed on reload
            out["callbacks"].setdefault(label, False)
        if self.step_extensions:  # absent when empty: recipes without any keep their hash
            out["step_extensions"] = labeled(self.step_extensions)
        return out

    def components(self) -> list[ComponentRef]:
        """Every component table of the recipe."""
        singles = [self.data, self.student, self.teacher, self.attack, self.objective]
        return [ref for ref in singles if ref is not None] + [
            *self.aux.values(), *self.callbacks.values(), *self.step_extensions.values(), *self.eval.metrics.values()
        ]

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`to_dict` (first 16 hex digits)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def with_overrides(self, overrides: list[str]) -> Recipe:
        """Re-resolve this recipe with extra ``--set`` overrides."""
        from advdistill.recipe.loading import apply_overrides

        data = apply_overrides(self.to_dict(), {}, overrides)
        return resolve(data, {}, source=self.source)


# -- resolution ----------------------------------------------------------------------------

#: the keys a recipe may have at its top level (besides ``extends``)
TOP_LEVEL_KEYS = {
    "schema", "name", "description", "data", "student", "teacher", "attack", "objective", "aux",
    "optim", "train", "eval", "callbacks", "step_extensions",
}
_DEFAULT_CALLBACKS = {"progress": {"kind": "progress"}}


class _Locator:
    """Says which file (or --set) a recipe key came from."""

    def __init__(self, provenance: Provenance, source: str | None) -> None:
        self.provenance, self.source = provenance, source or "<recipe>"

    def __call__(self, *path: str) -> str:
        for depth in range(len(path), 0, -1):
            origin = self.provenance.get(tuple(path[:depth]))
            if origin is not None:
                break
        else:
            origin = self.source
        # a table whose keys come from several places (a base file and a --set, say): name them all
        inside = {o for key, o in self.provenance.items() if len(key) > len(path) and key[: len(path)] == path}
        origins = [origin, *sorted(inside - {origin})] if path else [origin]
        return f"{' + '.join(origins)} [{'.'.join(path)}]" if path else origin


def _component(
    raw: Any, section: tuple[str, ...], kind: str, locate: _Locator
) -> ComponentRef:
    from advdistill.plugins import get_registry

    where = locate(*section)
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{where}: expected a table with kind = \"<{kind} name>\", got {raw!r}")
    params = dict(raw)
    name = params.pop("kind", None)
    registry = get_registry()
    if not isinstance(name, str):
        known = ", ".join(registry.names(kind))
        raise RecipeError(f"{where}: missing kind = \"<{kind} name>\". Known {kind}s: {known}.")
    if (kind, name) not in registry:
        raise RecipeError(
            f"{locate(*section, 'kind')}: unknown {kind} {name!r}.{did_you_mean(name, registry.names(kind))} "
            f"Run `advdistill plugins` to list all {kind}s.{registry.failure_note()}"
        )
    try:
        config = validated_config(kind, name, params, where=lambda key: locate(*section, *filter(None, [key])))
    except PluginError as exc:  # two plugins register the name, or its module cannot be imported
        raise RecipeError(f"{locate(*section, 'kind')}: {exc}") from None
    return ComponentRef(".".join(section), kind, name, config)


def _labeled(raw: Any, section: str, kind: str, locate: _Locator, defaults: Mapping[str, Any] | None = None):
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{locate(section)}: expected tables [{section}.<label>] with kind = ...")
    merged = {**(defaults or {}), **raw}
    return {
        label: _component(value, (*section.split("."), label), kind, locate)
        for label, value in merged.items()
        if value is not False  # `label = false` removes an inherited entry
    }


def _core(cls: type, raw: Any, section: str, locate: _Locator) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{locate(section)}: expected a table")
    return build_config(cls, raw, where=lambda key: locate(section, *filter(None, [key])))


def resolve(data: Mapping[str, Any], provenance: Provenance, *, source: str | None = None) -> Recipe:
    """Validate merged recipe data and resolve every component against the registry."""
    locate = _Locator(provenance, source)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise RecipeError(
                f"{locate(key)}: unknown top-level key {key!r}.{did_you_mean(key, TOP_LEVEL_KEYS)} "
                f"Valid keys: {', '.join(sorted(TOP_LEVEL_KEYS))}."
            )
    schema = data.get("schema")
    if schema != SCHEMA_VERSION:
        raise RecipeError(
            f"{locate('schema')}: expected schema = {SCHEMA_VERSION} at the top of the recipe, got {schema!r}"
        )
    for required in ("data", "student"):
        if required not in data:
            raise RecipeError(f"{locate()}: missing the [{required}] table")

    def optional(key: str, kind: str) -> ComponentRef | None:
        return _component(data[key], (key,), kind, locate) if data.get(key) not in (None, False) else None

    ev_raw = dict(data.get("eval") or {})
    metrics = _labeled(ev_raw.pop("metrics", None) or _DEFAULT_METRICS, "eval.metrics", "metric", locate)
    eval_config = attrs.evolve(_core(EvalConfig, ev_raw, "eval", locate), metrics=metrics)
    default_name = Path(source).stem if source else "recipe"
    name = data.get("name", default_name)
    if not isinstance(name, str):
        raise RecipeError(f"{locate('name')}: expected a string")
    data_ref, val = _data(data["data"], locate)
    recipe = Recipe(
        name=name,
        description=str(data.get("description", "")),
        data=data_ref,
        val=val,
        student=_component(data["student"], ("student",), "model", locate),
        teacher=optional("teacher", "teacher"),
        attack=optional("attack", "attack"),
        objective=optional("objective", "objective"),
        aux=_labeled(data.get("aux"), "aux", "aux", locate),
        optim=_core(OptimConfig, data.get("optim"), "optim", locate),
        train=_core(TrainConfig, data.get("train"), "train", locate),
        eval=eval_config,
        callbacks=_labeled(data.get("callbacks"), "callbacks", "callback", locate, _DEFAULT_CALLBACKS),
        step_extensions=_labeled(data.get("step_extensions"), "step_extensions", "step_extension", locate),
        source=source,
    )
    _check_teacher_needs(recipe, locate)
    return recipe


#: keys of [data] that the core reads (the validation split); the data set's config gets the rest
_DATA_CORE_KEYS = tuple(attrs.fields_dict(ValSplit))


def _data(raw: Any, locate: _Locator) -> tuple[ComponentRef, ValSplit]:
    """The [data] table: the data set component, and the validation split's core keys."""
    if not isinstance(raw, Mapping):
        return _component(raw, ("data",), "dataset", locate), ValSplit()
    params = {k: v for k, v in raw.items() if k not in _DATA_CORE_KEYS}
    try:
        ref = _component(params, ("data",), "dataset", locate)
    except RecipeError as exc:  # a misspelt core key: suggest it, not the data set's closest key
        for key in params:
            hint = did_you_mean(key, _DATA_CORE_KEYS)
            if hint and f"unknown key {key!r}" in str(exc):
                raise RecipeError(
                    f"{locate('data', key)}: unknown key {key!r}.{hint} [data] takes the data set's keys "
                    "and the validation split's val_size and val_seed."
                ) from None
        raise
    split = {k: raw[k] for k in _DATA_CORE_KEYS if k in raw}
    split.setdefault("val_size", ref.trait("default_val_size"))
    return ref, build_config(ValSplit, split, where=lambda key: locate("data", *filter(None, [key])))


def _check_teacher_needs(recipe: Recipe, locate: _Locator) -> None:
    if recipe.teacher is not None:
        return
    users = [recipe.attack, recipe.objective, *recipe.aux.values(), *recipe.step_extensions.values()]
    for ref in users:
        if ref is not None and ref.trait("requires_teacher"):
            raise RecipeError(
                f"{locate(*ref.section.split('.'))}: {ref.component_kind} {ref.name!r} needs a teacher, "
                "but the recipe has no [teacher] table. Add one, e.g.\n"
                '  [teacher]\n  kind = "checkpoint"\n  path = "runs/teacher/checkpoints/best.safetensors"'
            )


def check_packages(recipe: Recipe) -> None:
    """Every optional package the recipe's components need (``requires_packages``) is installed.

    ``recipe check`` and ``train`` call it; evaluation does not (a run tracked with MLflow can be
    evaluated where MLflow is not installed).
    """
    from advdistill.components import missing_packages

    where = recipe.source or "<recipe>"
    for ref in recipe.components():
        missing = missing_packages(ref.trait("requires_packages"))
        if missing:
            names = ", ".join(repr(m) for m in missing)
            install = " ".join(f"'{r}'" for r in dict.fromkeys(missing.values()))
            raise RecipeError(
                f"{where} [{ref.section}]: {ref.component_kind} {ref.name!r} needs the Python package(s) {names}, "
                f"which are not installed. Install: pip install {install} (or remove the table: "
                f"--set {ref.section}=false)."
            )


def validate_for_training(recipe: Recipe) -> None:
    """Training needs an attack and an objective on top of what evaluation needs, the packages its
    components import, and a validation split for the callbacks that read one."""
    where = recipe.source or "<recipe>"
    check_packages(recipe)
    for key in ("attack", "objective"):
        if getattr(recipe, key) is None:
            raise RecipeError(f"{where}: training needs an [{key}] table")
    if recipe.val.val_size == 0:
        for label, ref in recipe.callbacks.items():
            if ref.trait("requires_val"):
                raise RecipeError(
                    f"{where} [callbacks.{label}]: callback {ref.name!r} evaluates on the validation split, "
                    "but [data] val_size = 0. Hold out training images for it (e.g. --set data.val_size=1000), "
                    f"or remove the callback (--set callbacks.{label}=false)."
                )
