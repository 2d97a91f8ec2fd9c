"""Building the plugin manager and collecting every plugin's components into a registry."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pluggy

from advdistill import hookspecs
from advdistill.errors import PluginError
from advdistill.registry import KINDS, Registry

ENTRY_POINT_GROUP = "advdistill"
#: Comma-separated plugin (entry-point) names that must not be loaded.
DISABLE_ENV = "ADVDISTILL_DISABLE_PLUGINS"
#: Entry points of ours that were renamed: the old name still works in ADVDISTILL_DISABLE_PLUGINS.
RENAMED_PLUGINS = {"igdm": "aux_losses", "objectives": "methods"}

_default_registry: Registry | None = None


def make_plugin_manager(
    *, load_entrypoints: bool = True, extra: Sequence[object] = ()
) -> pluggy.PluginManager:
    """A fresh plugin manager with the ``advdistill`` hook specs and its plugins.

    :param load_entrypoints: load every plugin installed under the ``advdistill``
        entry-point group (ours included); blocked names in ``ADVDISTILL_DISABLE_PLUGINS``
        are skipped.
    :param extra: plugin objects (modules, classes, instances) to register as well.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in os.environ.get(DISABLE_ENV, "").split(","):
        if name.strip():
            pm.set_blocked(RENAMED_PLUGINS.get(name.strip(), name.strip()))
    if load_entrypoints:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken third-party plugin must say which one it is
            raise PluginError(f"Loading advdistill plugins failed: {type(exc).__name__}: {exc}") from exc
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"Plugin {exc.plugin!r} implements an unknown hook: {exc}") from exc
    return pm


def collect(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook of every plugin and return the filled registry."""
    registry = Registry()
    distributions = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    for kind, hook_name in KINDS.items():
        hook = getattr(pm.hook, hook_name)
        # Call implementations one by one, in registration order, so that each registration
        # knows its plugin and a clash names the plugin that came first.
        for impl in hook.get_hookimpls():
            dist = distributions.get(id(impl.plugin))
            package = dist.project_name if dist is not None else ""
            version = dist.version if dist is not None else ""
            register = registry.register_function(kind, impl.plugin_name, package, version)
            impl.function(register=register)
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
