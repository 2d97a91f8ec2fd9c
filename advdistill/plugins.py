"""Building the plugin manager and collecting every plugin's components into a registry.

One broken plugin must not take the others down: a plugin whose module fails to import, whose
hooks do not match the specs, or whose registration hook raises is recorded as a
:class:`PluginFailure` (name, distribution, stage, reason) and left out; everything else
loads. ``advdistill plugins`` lists the failures, and an unknown component name mentions them
(the missing component may be theirs). Two plugins registering one name are recorded as a
conflict on that name only; using it is the error, naming both.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pluggy
from attrs import define

from advdistill import hookspecs
from advdistill.errors import PluginError
from advdistill.registry import KINDS, ComponentSpec, Registry

ENTRY_POINT_GROUP = "advdistill"
#: Comma-separated plugin (entry-point) names that must not be loaded.
DISABLE_ENV = "ADVDISTILL_DISABLE_PLUGINS"
#: Entry points of ours that were renamed: the old name still works in ADVDISTILL_DISABLE_PLUGINS.
RENAMED_PLUGINS = {"igdm": "aux_losses", "objectives": "methods"}

_default_registry: Registry | None = None


@define(frozen=True)
class PluginFailure:
    """A plugin left out: which one, from which distribution, at which stage, and why."""

    plugin: str
    package: str
    version: str
    #: "import" (its module), "hooks" (its hook implementations), "register" (a registration hook raised)
    stage: str
    error: str

    def describe(self) -> str:
        source = f" (package {self.package} {self.version})".replace("  ", " ") if self.package else ""
        what = {"import": "could not be imported", "hooks": "has invalid hooks",
                "register": "failed while registering its components"}.get(self.stage, self.stage)
        return f"plugin {self.plugin!r}{source} {what}: {self.error}"

    def as_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "package": self.package, "version": self.version, "stage": self.stage,
                "error": self.error}


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus the failures of plugins that could not be loaded."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.failures: list[PluginFailure] = []
        self._packages: dict[str, tuple[str, str]] = {}

    def package_of(self, plugin_name: str) -> tuple[str, str]:
        """``(distribution name, version)`` a plugin was loaded from ('' for inline plugins)."""
        return self._packages.get(plugin_name, ("", ""))

    def load_entrypoints_isolated(self, group: str) -> int:
        """Like ``load_setuptools_entrypoints``, but a plugin that fails is recorded, not raised."""
        count = 0
        for dist in list(importlib.metadata.distributions()):
            for ep in dist.entry_points:
                if ep.group != group or self.has_plugin(ep.name) or self.is_blocked(ep.name):
                    continue
                package = (dist.metadata["name"] or "", dist.version or "")
                try:
                    plugin = ep.load()
                except Exception as exc:
                    self.failures.append(PluginFailure(ep.name, *package, "import", _reason(exc)))
                    continue
                try:
                    self.register(plugin, name=ep.name)
                except (pluggy.PluginValidationError, ValueError) as exc:
                    self.failures.append(PluginFailure(ep.name, *package, "hooks", _reason(exc)))
                    continue
                self._plugin_distinfo.append((plugin, dist))  # what list_plugin_distinfo() reports
                self._packages[ep.name] = package
                count += 1
        return count

    def drop_invalid(self) -> None:
        """``check_pending()``, unregistering (and recording) each plugin with an unknown hook."""
        while True:
            try:
                self.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.get_name(exc.plugin) or repr(exc.plugin)
                self.unregister(exc.plugin)
                self.failures.append(PluginFailure(name, *self.package_of(name), "hooks", str(exc)))


def make_plugin_manager(*, load_entrypoints: bool = True, extra: Sequence[object] = ()) -> PluginManager:
    """A fresh plugin manager with the ``advdistill`` hook specs and its plugins.

    :param load_entrypoints: load every plugin installed under the ``advdistill``
        entry-point group (ours included); blocked names in ``ADVDISTILL_DISABLE_PLUGINS``
        are skipped, and plugins that fail are recorded in ``pm.failures``.
    :param extra: plugin objects (modules, classes, instances) to register as well; these are
        the caller's own, so their errors are raised.
    """
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    for name in os.environ.get(DISABLE_ENV, "").split(","):
        if name.strip():
            pm.set_blocked(RENAMED_PLUGINS.get(name.strip(), name.strip()))
    if load_entrypoints:
        pm.load_entrypoints_isolated(ENTRY_POINT_GROUP)
        pm.drop_invalid()
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"Plugin {exc.plugin!r} implements an unknown hook: {exc}") from exc
    return pm


def collect(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook of every plugin and return the filled registry.

    A plugin whose hook raises is left out entirely (none of its registrations count) and
    recorded in ``registry.failures``, with the failures of ``pm`` itself.
    """
    registry = Registry()
    failures = list(getattr(pm, "failures", []))
    package_of = getattr(pm, "package_of", None)
    distributions = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    failed: set[str] = set()
    staged: list[tuple[str, ComponentSpec, tuple[str, ...]]] = []
    # Call implementations one by one, in registration order, so that each registration knows
    # its plugin and a clash names the plugin that came first.
    for kind, hook_name in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            name = impl.plugin_name
            if name in failed:
                continue
            dist = distributions.get(id(impl.plugin))
            package, version = package_of(name) if package_of else ("", "")
            if dist is not None and not package:
                package, version = dist.metadata["name"] or "", dist.version or ""

            def register(component: str, target: Any, *, summary: str | None = None, aliases: Sequence[str] = (),
                         config: Any = None, traits: Mapping[str, Any] | None = None, _kind: str = kind,
                         _name: str = name, _package: str = package, _version: str = version):
                spec = ComponentSpec(_kind, component, target, _name, _package, _version, summary, config=config,
                                     traits=traits)
                staged.append((_name, spec, tuple(aliases)))

            try:
                impl.function(register=register)
            except Exception as exc:
                failed.add(name)
                failures.append(PluginFailure(name, package, version, "register", _reason(exc)))
    for name, spec, aliases in staged:
        if name in failed:
            continue
        try:
            registry.add(spec, aliases=aliases, on_conflict="record")
        except PluginError as exc:  # a malformed registration (bad name or kind): that plugin fails
            failed.add(name)
            failures.append(PluginFailure(name, spec.package, spec.version, "register", str(exc)))
            registry.remove_plugin(name)
    registry.failures = failures
    return registry


def get_registry() -> Registry:
    """The process-wide registry of installed plugins (built on first use)."""
    global _default_registry
    if _default_registry is None:
        _default_registry = collect(make_plugin_manager())
    return _default_registry


def set_registry(registry: Registry | None) -> Registry | None:
    """Replace the process-wide registry (tests use this); returns the previous one."""
    global _default_registry
    previous, _default_registry = _default_registry, registry
    return previous
