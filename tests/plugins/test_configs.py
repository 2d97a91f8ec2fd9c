"""Every built-in component declares its config class (``register(..., config=...)``) in its family's
torch-free ``plugins/<family>/config.py``, and its traits (``register(..., traits=...)``): the
declared class is exactly the one the component's ``Config`` names, the declared traits are the
component's class attributes, and importing the declarations imports neither torch nor a component
module."""

from __future__ import annotations

import json

import attrs
import pytest

from advdistill.plugins import get_registry
from advdistill.registry import KINDS, TRAITS

#: commands have no recipe table; the schedules' module (plugins/schedules/shapes.py) is torch-free itself
UNDECLARED_KINDS = ("command", "schedule")


def builtins() -> list[tuple[str, str]]:
    registry = get_registry()
    return [(kind, name) for kind in KINDS if kind not in UNDECLARED_KINDS for name in registry.names(kind)
            if registry.spec(kind, name).package == "advdistill"]


def test_the_components_are_discovered():
    found = set(builtins())
    assert {("attack", "pgd"), ("attack", "rslad_kl"), ("objective", "pgd_at"), ("aux", "igdm"),
            ("model", "timm"), ("teacher", "robustbench"), ("dataset", "mnist5k"), ("metric", "clean"),
            ("callback", "ema"), ("step_extension", "awp")} <= found


@pytest.mark.parametrize(("kind", "name"), builtins())
def test_the_declared_config_is_the_components(kind, name):
    spec = get_registry().spec(kind, name)
    component = spec.load()
    own = component if attrs.has(component) else getattr(component, "Config", None)
    assert spec.config is not None, f"{kind} {name!r}: register it with config=... (or config=False)"
    assert (spec.config is False) == (own is None), f"{kind} {name!r}: config=False iff the component has no Config"
    assert get_registry().get_config(kind, name) is own
    if own is not None:  # a "module:Class" string naming a plugins/<family>/config.py
        module = spec.config.partition(":")[0]
        assert module.startswith("advdistill_plugins.") and module.endswith(".config"), spec.config


@pytest.mark.parametrize(("kind", "name"), builtins())
def test_the_declared_traits_are_the_components(kind, name):
    spec = get_registry().spec(kind, name)
    assert spec.traits is not None, f"{kind} {name!r}: register it with traits=... (declaring_traits)"
    assert set(spec.traits) <= set(TRAITS), f"{kind} {name!r}: unknown traits {set(spec.traits) - set(TRAITS)}"
    component = spec.load()
    for trait, default in TRAITS.items():
        assert spec.trait(trait) == getattr(component, trait, default), f"{kind} {name!r}: {trait} differs"


def test_importing_every_declared_config_imports_no_torch_and_no_component(fresh_python):
    specs = [get_registry().spec(kind, name) for kind, name in builtins()]
    targets = sorted({spec.config for spec in specs if spec.config})
    code = (
        "import importlib, json, sys\n"
        f"for target in {targets!r}:\n"
        "    module, _, name = target.partition(':')\n"
        "    getattr(importlib.import_module(module), name)\n"
        "heavy = [m for m in ('torch', 'numpy', 'timm', 'safetensors') if m in sys.modules]\n"
        "ours = sorted(m for m in sys.modules if m.startswith('advdistill_plugins.') and m.count('.') > 1)\n"
        "print(json.dumps([heavy, ours]))\n"
    )
    heavy, ours = json.loads(fresh_python(code, timeout=120).stdout)
    assert heavy == []
    # the config modules, and the RobustBench table the teacher config checks names against
    assert all(m.endswith(".config") for m in ours if m != "advdistill_plugins.teachers.known"), ours
