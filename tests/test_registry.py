import json
import subprocess
import sys

import pytest

from advdistill import hookimpl
from advdistill.errors import PluginError, UnknownComponentError
from advdistill.registry import ComponentSpec, Registry


def test_duplicate_name_names_both_plugins():
    registry = Registry()
    registry.add(ComponentSpec("attack", "pgd", object(), plugin="first"))
    with pytest.raises(PluginError) as err:
        registry.add(ComponentSpec("attack", "pgd", object(), plugin="second"))
    assert "'first'" in str(err.value) and "'second'" in str(err.value)


def test_duplicate_alias_is_an_error():
    registry = Registry()
    registry.add(ComponentSpec("attack", "pgd", object(), plugin="a"), aliases=["madry"])
    with pytest.raises(PluginError, match="madry"):
        registry.add(ComponentSpec("attack", "madry", object(), plugin="b"))


def test_unknown_name_suggests_closest():
    registry = Registry()
    for name in ("pgd", "trades_kl", "rslad_kl"):
        registry.add(ComponentSpec("attack", name, object(), plugin="p"))
    with pytest.raises(UnknownComponentError) as err:
        registry.get("attack", "rslad_k")
    message = str(err.value)
    assert "'rslad_kl'" in message and "advdistill plugins" in message
    assert not message.startswith("'"), "the message must not be KeyError-quoted"


def test_unknown_kind_lists_kinds():
    with pytest.raises(UnknownComponentError, match="Did you mean 'attack'"):
        Registry().names("atack")


def test_lazy_target_import_error_is_clear():
    registry = Registry()
    registry.add(ComponentSpec("attack", "broken", "no_such_module:Thing", plugin="p"))
    with pytest.raises(PluginError, match="could not be imported from 'no_such_module:Thing'"):
        registry.get("attack", "broken")


def test_declared_config_is_imported_without_the_component(tmp_path, monkeypatch):
    # resolving a recipe needs the config class only: a declared one must not import the component
    (tmp_path / "cfg_only_configs.py").write_text(
        "import attrs\n@attrs.define\nclass PConfig:\n    eps: float = 0.5\n")
    (tmp_path / "cfg_only_component.py").write_text("raise ImportError('component imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    registry.add(ComponentSpec("attack", "p", "cfg_only_component:P", plugin="x", config="cfg_only_configs:PConfig"))
    config_cls = registry.get_config("attack", "p")
    assert config_cls.__name__ == "PConfig" and config_cls().eps == 0.5
    assert "cfg_only_component" not in sys.modules
    with pytest.raises(PluginError, match="component imported"):
        registry.get("attack", "p")


def test_config_false_takes_no_parameters_and_none_reads_the_component():
    import attrs

    @attrs.define
    class OwnConfig:
        k: int = 1

    class WithConfig:
        Config = OwnConfig

    registry = Registry()
    registry.add(ComponentSpec("metric", "none", "no_such_module:X", plugin="p", config=False), aliases=["nil"])
    registry.add(ComponentSpec("metric", "own", WithConfig, plugin="p"))
    assert registry.get_config("metric", "none") is None
    assert registry.get_config("metric", "nil") is None, "an alias shares its component's config"
    assert registry.get_config("metric", "own") is OwnConfig


def test_declared_traits_are_read_without_the_component_and_default_when_left_out():
    class Component:
        requires_teacher = True
        default_val_size = 500

    registry = Registry()
    registry.add(ComponentSpec("dataset", "lazy", "no_such_module:X", plugin="p", traits={"default_val_size": 500}),
                 aliases=["lazy2"])
    registry.add(ComponentSpec("objective", "own", Component, plugin="p"))
    assert registry.trait("dataset", "lazy", "default_val_size") == 500  # the module is never imported
    assert registry.trait("dataset", "lazy2", "default_val_size") == 500, "an alias shares the traits"
    assert registry.trait("dataset", "lazy", "requires_teacher") is False
    assert registry.trait("dataset", "lazy", "requires_packages") == {}
    # undeclared: read from the component, with the same defaults
    assert registry.trait("objective", "own", "requires_teacher") is True
    assert registry.trait("objective", "own", "requires_val") is False


def test_an_unknown_trait_is_a_plugin_error_naming_the_closest():
    with pytest.raises(PluginError, match=r"unknown traits 'requires_teachers'.*Did you mean 'requires_teacher'"):
        Registry().add(ComponentSpec("aux", "x", object(), plugin="p", traits={"requires_teachers": True}))


def test_a_broken_config_target_is_a_plugin_error():
    registry = Registry()
    registry.add(ComponentSpec("attack", "b", object(), plugin="p", config="no_such_module:Config"))
    with pytest.raises(PluginError, match="could not be imported from 'no_such_module:Config'"):
        registry.get_config("attack", "b")


def test_builtin_components_are_registered_through_entry_points():
    from advdistill.plugins import make_plugin_manager

    pm = make_plugin_manager()
    plugins = {name for name, _ in pm.list_name_plugin()}
    assert {"attacks", "methods", "aux_losses", "models", "datasets", "metrics"} <= plugins
    ours = {pm.get_name(plugin) for plugin, dist in pm.list_plugin_distinfo() if dist.project_name == "advdistill"}
    assert ours == {"attacks", "methods", "aux_losses", "schedules", "models", "teachers", "datasets", "metrics",
                    "callbacks", "step_extensions", "demo"}


def test_inline_plugin_and_duplicate_detection(register_plugin):
    class Mine:
        @hookimpl
        def register_attacks(self, register):
            register("my_attack", "advdistill_plugins.attacks.pgd:PGD", summary="mine")

    registry = register_plugin(Mine(), name="mine")
    assert "my_attack" in registry.names("attack")

    class Clash:
        @hookimpl
        def register_attacks(self, register):
            register("pgd", object())

    expected = r"registered twice: by plugin 'attacks' \(package advdistill .*\) and by plugin 'clash'"
    with pytest.raises(PluginError, match=expected):
        register_plugin(Clash(), name="clash")


def test_disable_plugins_env(monkeypatch):
    from advdistill.plugins import collect, make_plugin_manager

    monkeypatch.setenv("ADVDISTILL_DISABLE_PLUGINS", "aux_losses, demo")
    registry = collect(make_plugin_manager())
    assert "igdm" not in registry.names("aux")
    assert "pgd" in registry.names("attack")


@pytest.mark.parametrize(("old", "new"), [("igdm", "aux_losses"), ("objectives", "methods")])
def test_renamed_plugins_can_still_be_disabled_by_their_old_name(monkeypatch, old, new):
    from advdistill.plugins import make_plugin_manager

    monkeypatch.setenv("ADVDISTILL_DISABLE_PLUGINS", old)
    assert make_plugin_manager().is_blocked(new)


def test_registration_imports_no_torch():
    code = (
        "import sys, advdistill\n"
        "infos = advdistill.list_components()\n"
        "assert len(infos) > 10\n"
        "print('torch' in sys.modules)\n"
    )
    # list_components() reads summaries given at registration; nothing heavy is imported
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_plugins_json_lists_kind_name_plugin_package_version(cli_runner):
    result = cli_runner("plugins", "--json")
    rows = json.loads(result.output)
    pgd = next(r for r in rows if r["kind"] == "attack" and r["name"] == "pgd")
    assert pgd["plugin"] == "attacks" and pgd["package"] == "advdistill" and pgd["version"]
    kinds = {r["kind"] for r in rows}
    assert {"attack", "objective", "aux", "schedule", "model", "teacher", "dataset", "metric", "callback"} <= kinds
