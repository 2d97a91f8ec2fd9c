"""Bundled recipes by name: `advdistill recipe list`, and names accepted wherever a recipe path is."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import advdistill as ad
from advdistill.errors import RecipeError
from advdistill.recipe.bundled import bundled_name, find_bundled, list_bundled, resolve_recipe_path

ROOT = Path(__file__).resolve().parents[2]


def test_the_list_holds_the_runnable_recipes_not_the_pieces():
    names = {r.name: r for r in list_bundled()}
    assert {"demo/teacher", "demo/rslad+igdm", "cifar10/resnet18/rslad+igdm",
            "paper/cifar100/resnet18/bdm_at/ard+igdm"} <= set(names)
    assert not any("base" in name.split("/") for name in names)  # bases are extended, not run
    assert "leaves" not in names and "paper/numbers" not in names  # tables, not recipes
    assert names["demo/teacher"].summary.startswith("PGD-AT teacher")  # its description
    assert names["cifar10/resnet18/rslad+igdm"].summary == "RSLAD + IGDM: ResNet-18 student on CIFAR-10."
    expected = {p.relative_to(ROOT / "recipes").with_suffix("").as_posix()
                for p in (ROOT / "recipes").rglob("*.toml")}
    assert set(names) <= expected
    assert {r.name for r in list_bundled(bases=True)} - set(names) >= {"base/cifar", "demo/base"}


@pytest.mark.parametrize("text", ["demo/teacher", "recipes/demo/teacher.toml", "demo/teacher.toml",
                                  "./recipes/demo/teacher.toml"])
def test_a_name_or_a_checkout_path_resolves_to_the_installed_file(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert bundled_name(text) == "demo/teacher"
    assert resolve_recipe_path(text) == find_bundled("demo/teacher")
    assert ad.load_recipe(text).name == "teacher"


def test_a_local_file_wins_over_a_bundled_name(tmp_path, monkeypatch, tiny_recipe):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    shutil.copy(tiny_recipe(), tmp_path / "demo" / "teacher.toml")
    assert resolve_recipe_path("demo/teacher.toml") == Path("demo/teacher.toml")
    assert ad.load_recipe("demo/teacher.toml").name == "tiny"


@pytest.mark.parametrize("text", ["../recipes/demo/teacher", "/demo/teacher", "demo/nothing", ""])
def test_what_is_no_bundled_name_resolves_to_nothing(text):
    assert find_bundled(text) is None


def test_a_missing_recipe_suggests_bundled_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError) as info:
        ad.load_recipe("cifar10/resnet18/rslad+igmd")
    message = str(info.value)
    assert "Recipe file not found: cifar10/resnet18/rslad+igmd" in message
    assert "'cifar10/resnet18/rslad+igdm'" in message and "advdistill recipe list" in message
    with pytest.raises(RecipeError, match="'cifar10/resnet18/trades'"):  # the same leaf elsewhere
        ad.load_recipe("cifar10/wrn/trades")


def test_recipe_list_command(cli_runner):
    out = cli_runner("recipe", "list").output
    assert "demo/teacher" in out and "cifar100/mobilenetv2/adaad+igdm-no-tin" in out and "base/" not in out
    rows = json.loads(cli_runner("recipe", "list", "--json", "demo/*").output)
    assert [r["name"] for r in rows] == ["demo/rslad+igdm", "demo/rslad", "demo/teacher"]
    assert Path(rows[0]["path"]).is_file()
    assert "cifar10/mobilenetv2/" in cli_runner("recipe", "list", "mobilenetv2").output
    assert "no bundled recipe matches" in cli_runner("recipe", "list", "nothing*").output


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """advdistill as a user installs it: a wheel built from a copy of the sources, installed with
    ``pip install --target`` into a directory that comes first on the path."""
    base = tmp_path_factory.mktemp("installed")
    source = base / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("advdistill", "plugins", "recipes"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(base / "wheel")],
                   check=True, capture_output=True, timeout=300)
    wheel = next((base / "wheel").glob("advdistill-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(base / "site"), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return base / "site"


def run_installed(site, cwd, *args, code=None):
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "advdistill.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_an_installed_package_lists_and_resolves_its_recipes_from_any_directory(installed, tmp_path):
    where = run_installed(installed, tmp_path, code="import advdistill, advdistill_recipes; "
                          "print(advdistill.__file__); print(advdistill_recipes.__file__)")
    assert where.stdout.count(str(installed)) == 2, where.stdout + where.stderr  # the installed copy
    listing = run_installed(installed, tmp_path, "recipe", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert Path(rows["cifar10/resnet18/rslad+igdm"]["path"]).is_relative_to(installed)
    assert len(rows) == len(list_bundled())
    for name in ("cifar10/resnet18/rslad+igdm", "recipes/demo/teacher.toml"):
        shown = run_installed(installed, tmp_path, "recipe", "show", name)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["recipe_hash"] == ad.load_recipe(ROOT / "recipes" /
                                                                         f"{bundled_name(name)}.toml").hash
    missing = run_installed(installed, tmp_path, "recipe", "check", "cifar10/resnet18/rslad+igmd")
    assert missing.returncode == 2 and "Did you mean the bundled 'cifar10/resnet18/rslad+igdm'" in missing.stderr
