"""The recipe's structure: core sections (attrs) and component tables resolved via the registry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import define, field
from attrs.validators import ge, gt, instance_of, optional

from advdistill.config import (
    ScheduledValue,
    as_float,
    as_float_tuple,
    build_config,
    config_to_dict,
    in_range,
    one_of,
    scheduled,
)
from advdistill.errors import RecipeError, did_you_mean
from advdistill.recipe.loading import Provenance

SCHEMA_VERSION = 1
#: ``[train] compile_mode``: torch.compile modes ("reduce-overhead" replays CUDA graphs)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: ``[train] optimizer_impl``: "auto" is PyTorch's choice (foreach on CUDA, a for-loop on CPU)
OPTIMIZER_IMPLS = ("auto", "foreach", "fused", "for_loop")


@define(frozen=True, kw_only=True)
class TrainConfig:
    """``[train]``: the training loop."""

    epochs: int = field(default=1, validator=[instance_of(int), ge(1)])
    batch_size: int = field(default=128, validator=[instance_of(int), ge(1)])
    seed: int = field(default=0, validator=instance_of(int))
    device: str = field(default="auto", validator=instance_of(str))
    #: bf16 autocast on CUDA (ignored on CPU)
    amp: bool = field(default=True, validator=instance_of(bool))
    #: channels_last memory format on CUDA (ignored on CPU)
    channels_last: bool = field(default=True, validator=instance_of(bool))
    #: the student's BatchNorm mode while the inner maximization runs ("eval" as the official codes)
    attack_bn: str = field(default="eval", validator=one_of("eval", "train"))
    augment: str = field(default="none", validator=one_of("none", "crop", "flip", "crop_flip"))
    crop_padding: int = field(default=4, validator=[instance_of(int), ge(0)])
    log_every: int = field(default=50, validator=[instance_of(int), ge(1)])
    #: stop an epoch after this many steps (quick checks); None = the whole epoch
    max_steps_per_epoch: int | None = field(default=None, validator=optional([instance_of(int), ge(1)]))
    grad_clip: float | None = field(default=None, converter=attrs.converters.optional(as_float))
    #: abort when the loss exceeds this (divergence guard); non-finite losses always abort
    max_loss: float | None = field(default=1e4, converter=attrs.converters.optional(as_float))
    #: the periodic-evaluation key that decides checkpoints/best (higher is better)
    best_metric: str = field(default="pgd", validator=instance_of(str))
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


@define(frozen=True, kw_only=True)
class OptimConfig:
    """``[optim]``: the student's optimizer; ``lr`` may be a schedule table."""

    kind: str = field(default="sgd", validator=one_of("sgd", "adamw"))
    lr: ScheduledValue = scheduled(0.1)
    momentum: float = field(default=0.9, converter=as_float, validator=in_range(0.0, 1.0))
    nesterov: bool = field(default=False, validator=instance_of(bool))
    weight_decay: float = field(default=2e-4, converter=as_float, validator=in_range(0.0, 1.0))
    betas: tuple[float, ...] = field(default=(0.9, 0.999), converter=as_float_tuple)


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

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.name, **config_to_dict(self.config)}


@define(frozen=True, kw_only=True)
class EvalConfig:
    """``[eval]``: the evaluation suite run at the end of training and by ``advdistill eval``."""

    batch_size: int = field(default=256, validator=[instance_of(int), ge(1)])
    limit: int | None = field(default=None, validator=optional([instance_of(int), gt(0)]))
    at_end: bool = field(default=True, validator=instance_of(bool))
    #: which checkpoint the end-of-training evaluation reports ("best" falls back to "last")
    checkpoint: str = field(default="last", validator=one_of("last", "best"))
    seed: int = field(default=0, validator=instance_of(int))
    metrics: dict[str, ComponentRef] = field(factory=dict)


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
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain JSON data (defaults filled in)."""

        def labeled(refs: Mapping[str, ComponentRef]) -> dict[str, Any]:
            return {label: ref.to_json() for label, ref in refs.items()}

        out: dict[str, Any] = {"schema": SCHEMA_VERSION, "name": self.name}
        if self.description:
            out["description"] = self.description
        out["data"] = self.data.to_json()
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
        return out

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

_TOP_LEVEL = {
    "schema", "name", "description", "data", "student", "teacher", "attack", "objective", "aux",
    "optim", "train", "eval", "callbacks",
}
_DEFAULT_CALLBACKS = {"progress": {"kind": "progress"}}
_DEFAULT_METRICS = {"clean": {"kind": "clean"}, "pgd20": {"kind": "pgd"}}


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
            f"Run `advdistill plugins` to list all {kind}s."
        )
    component = registry.get(kind, name)
    variant = name.partition(":")[2]
    if variant:
        params = {"variant": variant, **params}
    config = build_config(component, params, where=lambda key: locate(*section, *filter(None, [key])))
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
        if key not in _TOP_LEVEL:
            raise RecipeError(
                f"{locate(key)}: unknown top-level key {key!r}.{did_you_mean(key, _TOP_LEVEL)} "
                f"Valid keys: {', '.join(sorted(_TOP_LEVEL))}."
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
    recipe = Recipe(
        name=name,
        description=str(data.get("description", "")),
        data=_component(data["data"], ("data",), "dataset", locate),
        student=_component(data["student"], ("student",), "model", locate),
        teacher=optional("teacher", "teacher"),
        attack=optional("attack", "attack"),
        objective=optional("objective", "objective"),
        aux=_labeled(data.get("aux"), "aux", "aux", locate),
        optim=_core(OptimConfig, data.get("optim"), "optim", locate),
        train=_core(TrainConfig, data.get("train"), "train", locate),
        eval=eval_config,
        callbacks=_labeled(data.get("callbacks"), "callbacks", "callback", locate, _DEFAULT_CALLBACKS),
        source=source,
    )
    _check_teacher_needs(recipe, locate)
    return recipe


def _check_teacher_needs(recipe: Recipe, locate: _Locator) -> None:
    if recipe.teacher is not None:
        return
    users = [recipe.attack, recipe.objective, *recipe.aux.values()]
    for ref in users:
        if ref is not None and getattr(ref.load(), "requires_teacher", False):
            raise RecipeError(
                f"{locate(*ref.section.split('.'))}: {ref.component_kind} {ref.name!r} needs a teacher, "
                "but the recipe has no [teacher] table. Add one, e.g.\n"
                '  [teacher]\n  kind = "checkpoint"\n  path = "runs/teacher/checkpoints/best.safetensors"'
            )


def validate_for_training(recipe: Recipe) -> None:
    """Training needs an attack and an objective on top of what evaluation needs."""
    for key in ("attack", "objective"):
        if getattr(recipe, key) is None:
            raise RecipeError(f"{recipe.source or '<recipe>'}: training needs an [{key}] table")
