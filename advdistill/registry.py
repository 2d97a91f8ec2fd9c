"""The typed component registry: one namespace per component kind.

Plugins fill it through the hooks of :mod:`advdistill.hookspecs`; the core looks components
up here by ``(kind, name)`` and never imports a built-in plugin directly.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import attrs
from attrs import define, field

from advdistill.errors import PluginError, UnknownComponentError, did_you_mean

#: Component kinds and the hook that registers each (DESIGN §2).
KINDS: dict[str, str] = {
    "attack": "register_attacks",
    "objective": "register_objectives",
    "aux": "register_aux",
    "schedule": "register_schedules",
    "model": "register_models",
    "teacher": "register_teachers",
    "dataset": "register_datasets",
    "metric": "register_metrics",
    "callback": "register_callbacks",
    "step_extension": "register_step_extensions",
    "command": "register_commands",
}


#: The class attributes of components that resolving or checking a recipe reads, and their values
#: for a component that does not set them (the defaults of :mod:`advdistill.interfaces` apart:
#: a data set that leaves ``default_val_size`` out inherits 1,000 from ``DatasetSource``).
TRAITS: dict[str, Any] = {
    "requires_teacher": False,  # attack, objective, aux, step extension, metric: refused without [teacher]
    "requires_val": False,  # callback: refused with [data] val_size = 0
    "requires_packages": {},  # {module: pip requirement} that `recipe check` and `train` look for
    "default_val_size": 0,  # data set: [data] val_size when the recipe leaves it out
}


def split_variant(name: str) -> tuple[str, str]:
    """``"base:variant"`` → ``("base", "variant")``; a plain name → ``(name, "")``.

    A recipe's ``kind = "timm:resnet18"`` looks up ``timm`` and passes ``variant = "resnet18"``.
    """
    base, _, variant = name.partition(":")
    return base, variant


def with_variant(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` plus ``variant`` when ``name`` is ``"base:variant"`` (what the component's config receives)."""
    variant = split_variant(name)[1]
    return {"variant": variant, **params} if variant else dict(params)


class Register(Protocol):
    """The callable each registration hook receives."""

    def __call__(
        self, name: str, target: Any, *, summary: str | None = None, aliases: Sequence[str] = (),
        config: Any = None, traits: Mapping[str, Any] | None = None,
    ) -> None: ...


@define(frozen=True)
class ComponentInfo:
    """What ``advdistill plugins`` shows for one registered component."""

    kind: str
    name: str
    plugin: str
    package: str
    version: str
    summary: str
    alias_of: str | None = None
    #: "ok"; "conflict" (another plugin registers the same name); "broken" (its target cannot be imported)
    status: str = "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin,
            "package": self.package,
            "version": self.version,
            "summary": self.summary,
            "alias_of": self.alias_of,
            "status": self.status,
        }


@define
class ComponentSpec:
    """A registered component: where it comes from and how to import it lazily."""

    kind: str
    name: str
    target: Any  # the object, or "module:attribute"
    plugin: str
    package: str = ""
    version: str = ""
    summary: str | None = None
    alias_of: str | None = None
    #: the component's config class (or "module:attribute"); False: it takes no parameters;
    #: None: read ``Config`` from the component itself (which imports the component's module)
    config: Any = None
    #: the component's class attributes that recipe resolution reads (:data:`TRAITS`), declared so
    #: that reading them imports nothing; a trait left out has its default. None: read them from
    #: the component (which imports its module)
    traits: Mapping[str, Any] | None = None
    _loaded: Any = field(default=None, init=False, repr=False)
    _loaded_config: Any = field(default=None, init=False, repr=False)

    def load(self) -> Any:
        """Import (once) and return the component object."""
        if self._loaded is None:
            self._loaded = self._import(self.target)
        return self._loaded

    def load_config(self) -> type | None:
        """The component's config class (None: it takes no parameters).

        A declared ``config`` is imported on its own: resolving a recipe then needs only the
        config modules, not the components' (which import torch).
        """
        if self.config is None:
            component = self.load()
            return component if attrs.has(component) else getattr(component, "Config", None)
        if self.config is False:
            return None
        if self._loaded_config is None:
            self._loaded_config = self._import(self.config)
        return self._loaded_config

    def trait(self, name: str) -> Any:
        """The component's class attribute ``name`` (one of :data:`TRAITS`): declared, else read from it."""
        default = TRAITS[name]
        if self.traits is not None:
            return self.traits.get(name, default)
        return getattr(self.load(), name, default)

    def _import(self, target: Any) -> Any:
        if not isinstance(target, str):
            return target
        module_name, _, attribute = target.partition(":")
        try:
            obj = importlib.import_module(module_name)
            for part in filter(None, attribute.split(".")):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.plugin!r} could not be "
                f"imported from {target!r}: {exc}"
            ) from exc
        return obj

    def info(self, status: str = "ok") -> ComponentInfo:
        summary = self.summary
        if summary is None:
            try:
                doc = getattr(self.load(), "__doc__", None) or ""
            except PluginError as exc:  # listing must work even when one target is broken
                summary, status = str(exc), "broken"
            else:
                summary = doc.strip().splitlines()[0] if doc.strip() else ""
        return ComponentInfo(
            self.kind, self.name, self.plugin, self.package, self.version, summary, self.alias_of, status
        )

    def source(self) -> str:
        """``plugin 'x' (package y 1.0)`` for messages."""
        package = f" (package {self.package} {self.version})".replace(" )", ")") if self.package else ""
        return f"plugin {self.plugin!r}{package}"


class Registry:
    """All registered components, by kind then name."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, ComponentSpec]] = {kind: {} for kind in KINDS}
        #: (kind, name) -> every spec registered under that name, when more than one plugin did
        self.conflicts: dict[tuple[str, str], list[ComponentSpec]] = {}
        #: plugins left out because they failed to load or register (see advdistill.plugins)
        self.failures: list[Any] = []

    def register_function(self, kind: str, plugin: str, package: str = "", version: str = "") -> Register:
        """The ``register`` callable handed to one plugin's hook for one kind."""

        def register(
            name: str, target: Any, *, summary: str | None = None, aliases: Sequence[str] = (),
            config: Any = None, traits: Mapping[str, Any] | None = None,
        ) -> None:
            self.add(
                ComponentSpec(kind, name, target, plugin, package, version, summary, config=config, traits=traits),
                aliases=aliases,
            )

        return register

    def add(self, spec: ComponentSpec, aliases: Sequence[str] = (), on_conflict: str = "raise") -> None:
        """Add a component; a name already taken is an error naming both plugins.

        :param on_conflict: ``"record"`` keeps the name usable by nobody instead: looking it up
            raises the error naming both plugins (so only a recipe using the name fails).
        """
        if spec.kind not in self._items:
            raise PluginError(f"Unknown component kind {spec.kind!r}.{did_you_mean(spec.kind, KINDS)}")
        if not isinstance(spec.name, str) or not spec.name or ":" in spec.name:
            raise PluginError(
                f"Plugin {spec.plugin!r} registered {spec.kind} name {spec.name!r}: names must be "
                "non-empty strings without ':'."
            )
        unknown = sorted(set(spec.traits or {}) - set(TRAITS))
        if unknown:
            raise PluginError(
                f"Plugin {spec.plugin!r} registered {spec.kind} {spec.name!r} with unknown traits "
                f"{', '.join(map(repr, unknown))}.{did_you_mean(unknown[0], TRAITS)} Traits: {', '.join(TRAITS)}."
            )
        names = [spec.name, *aliases]
        if on_conflict == "raise":
            for key in names:
                existing = self._items[spec.kind].get(key)
                if existing is not None:
                    raise PluginError(_conflict_message(spec.kind, key, [existing, spec]))
        specs = [spec] + [
            ComponentSpec(spec.kind, alias, spec.target, spec.plugin, spec.package, spec.version,
                          spec.summary, alias_of=spec.name, config=spec.config, traits=spec.traits)
            for alias in aliases
        ]
        for item in specs:
            existing = self._items[item.kind].get(item.name)
            if existing is None:
                self._items[item.kind][item.name] = item
            else:
                self.conflicts.setdefault((item.kind, item.name), [existing]).append(item)

    def remove_plugin(self, plugin: str) -> None:
        """Forget every registration of ``plugin`` (it failed part way through)."""
        for items in self._items.values():
            for name in [n for n, spec in items.items() if spec.plugin == plugin]:
                del items[name]

    def names(self, kind: str) -> list[str]:
        return sorted(self._kind(kind))

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        return split_variant(name)[0] in self._items.get(kind, {})

    def spec(self, kind: str, name: str) -> ComponentSpec:
        """The spec registered as ``name``; ``"base:variant"`` names look up ``base``."""
        items = self._kind(kind)
        base = split_variant(name)[0] if isinstance(name, str) else name
        if base not in items:
            hint = did_you_mean(str(base), items) or (
                f" Known: {', '.join(sorted(items))}." if items else " No plugin registers any."
            )
            raise UnknownComponentError(
                f"Unknown {kind} {name!r}.{hint} Run `advdistill plugins` to list all components."
                f"{self.failure_note()}"
            )
        if (kind, base) in self.conflicts:
            raise PluginError(_conflict_message(kind, base, self.conflicts[kind, base]))
        return items[base]

    def failure_note(self) -> str:
        """A sentence naming the plugins that failed to load (their components are missing), or ''."""
        if not self.failures:
            return ""
        described = "; ".join(f.describe() for f in self.failures)
        return f" Note: {described} — a component it provides is missing until that is fixed."

    def get(self, kind: str, name: str) -> Any:
        """The (imported) component object registered as ``name``."""
        return self.spec(kind, name).load()

    def trait(self, kind: str, name: str, trait: str) -> Any:
        """A class attribute of the component registered as ``name`` (see :data:`TRAITS`)."""
        return self.spec(kind, name).trait(trait)

    def get_config(self, kind: str, name: str) -> type | None:
        """The config class of the component registered as ``name`` (None: it takes no parameters)."""
        return self.spec(kind, name).load_config()

    def infos(self, kind: str | None = None) -> Iterator[ComponentInfo]:
        for k in [kind] if kind else list(KINDS):
            for name in sorted(self._kind(k)):
                clashing = self.conflicts.get((k, name))
                if clashing:
                    for spec in clashing:
                        yield spec.info(status="conflict")
                else:
                    yield self._items[k][name].info()

    def _kind(self, kind: str) -> Mapping[str, ComponentSpec]:
        try:
            return self._items[kind]
        except KeyError:
            raise UnknownComponentError(
                f"Unknown component kind {kind!r}.{did_you_mean(kind, KINDS)} Kinds: {', '.join(KINDS)}."
            ) from None


def _conflict_message(kind: str, name: str, specs: Sequence[ComponentSpec]) -> str:
    sources = " and by ".join(spec.source() for spec in specs)
    return (
        f"{kind} {name!r} is registered twice: by {sources}. Rename one, or block a plugin with "
        "ADVDISTILL_DISABLE_PLUGINS=<plugin name>."
    )

