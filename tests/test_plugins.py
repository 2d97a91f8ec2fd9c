"""Plugin isolation: a plugin that fails to import or to register, or that clashes, leaves the others working.

The subprocess tests install real broken distributions (a ``*.dist-info`` with an entry point,
on PYTHONPATH), exactly as pip would leave them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from advdistill import hookimpl
from advdistill.errors import PluginError, UnknownComponentError
from advdistill.plugins import collect, make_plugin_manager
from advdistill.testing import TINY_RECIPE, to_toml


def test_a_raising_register_hook_leaves_out_that_plugin_only():
    class Boom:
        @hookimpl
        def register_attacks(self, register):
            register("boom_attack", "advdistill_plugins.attacks.pgd:PGD", summary="half registered")
            raise RuntimeError("broken registration")

    registry = collect(make_plugin_manager(extra=[Boom()]))
    assert "pgd" in registry.names("attack") and "boom_attack" not in registry.names("attack")
    [failure] = registry.failures
    assert failure.stage == "register" and "RuntimeError: broken registration" in failure.error
    with pytest.raises(UnknownComponentError, match=r"Unknown attack 'boom_attack'.*failed while registering"):
        registry.get("attack", "boom_attack")


def test_a_clash_makes_only_that_name_unusable():
    class Clash:
        @hookimpl
        def register_attacks(self, register):
            register("pgd", "advdistill_plugins.attacks.pgd:PGD", summary="another pgd")

    registry = collect(make_plugin_manager(extra=[Clash()]))
    with pytest.raises(PluginError, match=r"attack 'pgd' is registered twice: by plugin 'attacks' .* and by plugin"):
        registry.get("attack", "pgd")
    assert registry.get("attack", "rslad_kl") is not None
    assert [i.status for i in registry.infos("attack") if i.name == "pgd"] == ["conflict", "conflict"]


# -- real installed distributions ---------------------------------------------------------------

PLUGINS = {
    # its module cannot be imported
    "brokenimport": ("broken", "import no_such_module_for_advdistill_tests\n"),
    # its registration hook raises after registering one attack
    "raiser": ("raiser", """
        from advdistill import hookimpl

        @hookimpl
        def register_attacks(register):
            register("raiser_attack", "advdistill_plugins.attacks.pgd:PGD", summary="never usable")
            raise RuntimeError("boom while registering")
    """),
    # registers a name ours has, and a command
    "dupe": ("dupe", """
        from advdistill import hookimpl

        @hookimpl
        def register_attacks(register):
            register("rslad_kl", "advdistill_plugins.attacks.pgd:PGD", summary="a second rslad_kl")
    """),
}


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    """A directory that holds three installed broken plugin distributions (put it on PYTHONPATH)."""
    site = tmp_path_factory.mktemp("site")
    for dist, (entry_name, code) in PLUGINS.items():
        module = f"{dist}_advdistill_plugin"
        (site / f"{module}.py").write_text(textwrap.dedent(code))
        info = site / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[advdistill]\n{entry_name} = {module}\n")
    recipe = site / "tiny.toml"
    recipe.write_text(to_toml(TINY_RECIPE))
    return site


def run(site, *args, code=None, env=None):
    environment = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1", **(env or {})}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "advdistill.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)


def test_help_works_and_imports_no_plugin_code(broken_site):
    code = (
        "import sys\n"
        "from advdistill.cli import main\n"
        "sys.argv = ['advdistill', '--help']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    result = run(broken_site, code=code)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "train" in result.stdout and "teacher" in result.stdout
    assert "Plugins that failed to load" in result.stdout and "broken" in result.stdout
    assert "torch imported: False" in result.stdout


def test_plugins_lists_the_failures_with_distribution_and_reason(broken_site):
    result = run(broken_site, "plugins")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "plugin 'broken' (package brokenimport 0.1) could not be imported: ModuleNotFoundError" in out
    assert "plugin 'raiser' (package raiser 0.1) failed while registering its components: RuntimeError: boom" in out
    assert "[CONFLICT]" in out and "raiser_attack" not in out
    rows = json.loads(run(broken_site, "plugins", "--json").stdout)
    failed = {r["plugin"]: r for r in rows if r["status"] == "failed"}
    assert set(failed) == {"broken", "raiser"} and failed["broken"]["package"] == "brokenimport"
    disabled = run(broken_site, "plugins", env={"ADVDISTILL_DISABLE_PLUGINS": "broken,raiser,dupe"})
    assert "FAILED" not in disabled.stdout and "CONFLICT" not in disabled.stdout


def test_recipes_fail_only_where_a_broken_plugin_matters(broken_site):
    # three `recipe check` runs in one process with the broken distributions installed (torch imports once)
    code = textwrap.dedent(f"""
        import json
        from click.testing import CliRunner
        from advdistill.cli import cli
        recipe = {str(broken_site / "tiny.toml")!r}
        out = {{}}
        for name, extra in (("ok", []), ("clash", ["--set", "attack.kind=rslad_kl"]),
                            ("missing", ["--set", "attack.kind=raiser_attack"])):
            result = CliRunner().invoke(cli, ["recipe", "check", recipe, *extra])
            out[name] = [result.exit_code, result.output, repr(result.exception)]
        print(json.dumps(out))
    """)
    result = run(broken_site, code=code)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["ok"][0] == 0, out["ok"]
    status, clash, _ = out["clash"]
    assert status == 2 and "Traceback" not in clash
    assert "attack 'rslad_kl' is registered twice: by plugin 'methods' (package advdistill" in clash
    assert "by plugin 'dupe' (package dupe 0.1)" in clash
    status, missing, _ = out["missing"]
    assert status == 2 and "unknown attack 'raiser_attack'" in missing
    assert "plugin 'raiser' (package raiser 0.1) failed while registering its components" in missing
    assert "plugin 'broken' (package brokenimport 0.1) could not be imported" in missing
