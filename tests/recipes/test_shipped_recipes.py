"""Every shipped recipe validates, and the standard CIFAR grid is complete and composed as documented.

The methods are discovered, not listed: a method is a registered objective with a base recipe
in recipes/base/methods/, and the grid's leaves come from recipes/leaves.toml.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from advdistill.plugins import get_registry
from advdistill.recipe.loading import load_chain
from advdistill_recipes import generate

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TABLE = generate.read_table()
#: data tables beside the recipes, not recipes
NOT_RECIPES = {RECIPES / "leaves.toml", RECIPES / "paper" / "numbers.toml"}
#: METHODS.md's official settings where a method departs from the CIFAR defaults
#: (200 epochs, lr x0.1 at 100 and 150, weight decay 2e-4, batch 128, attack in eval mode)
OFFICIAL = {
    "ard": {"attack_bn": "train", "batch_size": {"cifar100": 256}},
    "iad": {"attack_bn": "train"},
    "rslad": {"epochs": 300, "milestones": [215, 260, 285], "scale": {"cifar10": 1.0, "cifar100": 10.0}},
    "adaad": {"weight_decay": 5e-4, "reduction": {"cifar10": "mean", "cifar100": "batchmean"}},
}


def shipped() -> list[Path]:
    """Every recipe a user may run: all TOML files except the bases meant for ``extends`` and data tables."""
    return sorted(
        p for p in RECIPES.rglob("*.toml")
        if "base" not in p.relative_to(RECIPES).parts[:-1] and p.name != "base.toml" and p not in NOT_RECIPES
    )


def method_bases() -> dict[str, Path]:
    """Each method's base recipe: recipes/base/methods/<method>.toml."""
    return {p.stem: p for p in sorted((RECIPES / "base" / "methods").glob("*.toml"))}


def needs_teacher(method: str) -> bool:
    """Whether the method's objective or inner maximization uses a teacher (asked of the registry)."""
    registry = get_registry()
    base, _ = load_chain(method_bases()[method])
    return any(
        getattr(registry.get(kind, base[section]["kind"]), "requires_teacher", False)
        for kind, section in (("objective", "objective"), ("attack", "attack"))
    )


def standard_leaves() -> list[tuple[str, str, str]]:
    grid = TABLE["standard"]
    return [(d, s, leaf) for d in grid["datasets"] for s in grid["students"] for leaf in grid["leaves"]]


def test_every_method_is_a_registered_objective_with_a_base_recipe_and_in_the_table():
    registry = get_registry()
    specs = [registry.spec("objective", name) for name in registry.names("objective")]
    builtin = {s.name for s in specs if s.package == "advdistill" and s.alias_of is None}
    assert set(method_bases()) == builtin  # every built-in method has its base recipe, and only those
    assert set(TABLE["methods"]) == builtin
    for method, spec in TABLE["methods"].items():
        assert spec["teacher"] is needs_teacher(method), method
    assert {generate.split_leaf(leaf)[0] for leaf in TABLE["standard"]["leaves"]} == builtin


@pytest.mark.parametrize("path", shipped(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_check_accepts_every_shipped_recipe(cli_runner, path):
    # the data sets and teachers are not on this machine: the recipe alone, as a CI job checks it
    result = cli_runner("recipe", "check", str(path), "--no-files")
    assert result.output.startswith("ok:")


def test_validating_every_bundled_recipe_imports_no_torch(fresh_python):
    # each table is checked by its component's declared config class (plugins/<family>/config.py) and
    # the component attributes resolution reads (default_val_size, requires_teacher, ...) are declared
    # at registration: resolving a recipe imports no component module, so no torch
    code = textwrap.dedent("""
        import json, sys
        from advdistill.recipe import check_packages, load_recipe
        from advdistill.recipe.bundled import list_bundled

        recipes = list_bundled()
        for recipe in recipes:
            check_packages(load_recipe(recipe.path))
        components = sorted(m for m in sys.modules if m.startswith("advdistill_plugins.") and m.count(".") > 1
                            and not m.endswith((".config", ".known", ".shapes")))
        print(json.dumps([len(recipes), "torch" in sys.modules, components]))
    """)
    count, torch_imported, components = json.loads(fresh_python(code).stdout)
    assert count > 150 and not torch_imported and components == []


@pytest.mark.parametrize("ds,student,leaf", standard_leaves())
def test_cifar_recipe_composition(ds, student, leaf):
    method, igdm, no_tin = generate.split_leaf(leaf)
    data, _ = load_chain(RECIPES / ds / student / f"{leaf}.toml")
    base, _ = load_chain(method_bases()[method])
    student_base, _ = load_chain(RECIPES / TABLE["students"][student]["base"])
    assert data["data"]["kind"] == ds
    assert data["student"] == student_base["student"]
    assert data["objective"]["kind"] == method
    assert data["attack"]["kind"] == ("pgd" if no_tin else base["attack"]["kind"])
    budget = data["attack"]
    assert (budget["eps"], budget["step_size"], budget["steps"]) == ("8/255", "2/255", 10)
    assert ("igdm" in data.get("aux", {})) is igdm
    if needs_teacher(method) or igdm:
        assert data["teacher"] == {
            "kind": "robustbench", "name": "Wang2023Better_WRN-28-10", "dataset": ds,
            "threat_model": "Linf", "model_dir": "models",
        }
        assert data["eval"]["metrics"]["grad_alignment"] == {"kind": "grad_alignment"}
    else:
        assert "teacher" not in data  # plain AT loads no teacher
    assert data["train"]["augment"] == "crop_flip" and data["optim"]["momentum"] == 0.9


@pytest.mark.parametrize("ds,student,leaf", standard_leaves())
def test_cifar_recipes_keep_the_official_settings(ds, student, leaf):
    method = generate.split_leaf(leaf)[0]
    data, _ = load_chain(RECIPES / ds / student / f"{leaf}.toml")
    facts = OFFICIAL.get(method, {})

    def fact(key, default):
        value = facts.get(key, default)
        return value.get(ds, default) if isinstance(value, dict) else value

    assert data["train"].get("attack_bn", "eval") == fact("attack_bn", "eval")
    assert data["optim"]["weight_decay"] == fact("weight_decay", 2e-4)
    assert data["train"]["epochs"] == fact("epochs", 200)
    assert data["optim"]["lr"]["milestones"] == fact("milestones", [100, 150])
    assert data["train"]["batch_size"] == fact("batch_size", 128)
    for key in ("scale", "reduction"):
        if key in facts:
            assert data["objective"][key] == fact(key, None)


@pytest.mark.parametrize("ds", TABLE["standard"]["datasets"])
@pytest.mark.parametrize("student", TABLE["standard"]["students"])
def test_adaad_igdm_without_teacher_in_the_inner_max(ds, student):
    no_tin, _ = load_chain(RECIPES / ds / student / "adaad+igdm-no-tin.toml")
    with_tin, _ = load_chain(RECIPES / ds / student / "adaad+igdm.toml")
    assert no_tin["attack"]["kind"] == "pgd" and with_tin["attack"]["kind"] == "adaad_kl"
    assert no_tin["objective"] == with_tin["objective"] and no_tin["aux"] == with_tin["aux"]
    assert no_tin["teacher"] == with_tin["teacher"]


def test_igdm_fragment_has_the_paper_defaults():
    data, _ = load_chain(RECIPES / "base" / "igdm.toml")
    igdm = data["aux"]["igdm"]
    assert igdm["alpha"] == {"kind": "linear", "start": 0.0, "end": 20.0}
    assert (igdm["beta"], igdm["gamma"], igdm["distance"], igdm["temperature"]) == (1.0, 1.0, "kl", 1.0)


@pytest.mark.parametrize("path", [p for p in shipped() if p.parent.parent.name in TABLE["standard"]["datasets"]],
                         ids=str)
def test_leaf_recipes_are_a_few_lines(path):
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) <= 14, "a leaf recipe composes bases; put shared settings in recipes/base/"


def test_a_distillation_recipe_without_teacher_is_a_clear_error(cli_runner):
    result = cli_runner("recipe", "check", str(RECIPES / "cifar10" / "resnet18" / "ard.toml"),
                        "--set", "teacher=false", exit_code=2)
    assert "[objective]" in result.output and "'ard' needs a teacher" in result.output
    assert "[teacher]" in result.output
