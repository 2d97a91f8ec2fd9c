"""Every shipped recipe validates, and the CIFAR tree is complete and composed as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from advdistill.recipe.loading import load_chain

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
DATASETS = ("cifar10", "cifar100")
STUDENTS = {"resnet18": "cifar_resnet18", "mobilenetv2": "cifar_mobilenetv2"}
#: method -> (its inner maximization, needs a teacher without IGDM)
METHODS = {
    "pgd_at": ("pgd", False), "trades": ("trades_kl", False), "mart": ("mart", False),
    "ard": ("pgd", True), "iad": ("pgd", True), "rslad": ("rslad_kl", True), "adaad": ("adaad_kl", True),
}


def shipped() -> list[Path]:
    """Every recipe a user may run: all TOML files except the bases meant for ``extends``."""
    return sorted(
        p for p in RECIPES.rglob("*.toml")
        if "base" not in p.relative_to(RECIPES).parts[:-1] and p.name != "base.toml"
    )


def cifar_tree() -> list[tuple[str, str, str, bool]]:
    return [(d, s, m, igdm) for d in DATASETS for s in STUDENTS for m in METHODS for igdm in (False, True)]


@pytest.mark.parametrize("path", shipped(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_check_accepts_every_shipped_recipe(cli_runner, path):
    result = cli_runner("recipe", "check", str(path))
    assert result.output.startswith("ok:")


@pytest.mark.parametrize("ds,student,method,igdm", cifar_tree())
def test_cifar_recipe_composition(ds, student, method, igdm):
    path = RECIPES / ds / student / f"{method}{'+igdm' if igdm else ''}.toml"
    data, _ = load_chain(path)
    attack, needs_teacher = METHODS[method]
    assert data["data"]["kind"] == ds
    assert data["student"]["kind"] == STUDENTS[student]
    assert data["objective"]["kind"] == method and data["attack"]["kind"] == attack
    budget = data["attack"]
    assert (budget["eps"], budget["step_size"], budget["steps"]) == ("8/255", "2/255", 10)
    assert ("igdm" in data.get("aux", {})) is igdm
    if needs_teacher or igdm:
        assert data["teacher"] == {
            "kind": "robustbench", "name": "Wang2023Better_WRN-28-10", "dataset": ds,
            "threat_model": "Linf", "model_dir": "models",
        }
    else:
        assert "teacher" not in data  # plain AT loads no teacher
    assert data["train"]["augment"] == "crop_flip" and data["optim"]["momentum"] == 0.9
    assert data["train"].get("attack_bn", "eval") == ("train" if method in ("ard", "iad") else "eval")
    assert data["optim"]["weight_decay"] == (5e-4 if method == "adaad" else 2e-4)
    epochs, milestones = (300, [215, 260, 285]) if method == "rslad" else (200, [100, 150])
    assert data["train"]["epochs"] == epochs and data["optim"]["lr"]["milestones"] == milestones
    assert data["train"]["batch_size"] == (256 if (ds, method) == ("cifar100", "ard") else 128)
    if method == "rslad":
        assert data["objective"]["scale"] == (10.0 if ds == "cifar100" else 1.0)
    if method == "adaad":
        assert data["objective"]["reduction"] == ("batchmean" if ds == "cifar100" else "mean")


@pytest.mark.parametrize("ds", DATASETS)
@pytest.mark.parametrize("student", STUDENTS)
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


@pytest.mark.parametrize("path", [p for p in shipped() if p.parent.parent.name in DATASETS], ids=str)
def test_leaf_recipes_are_a_few_lines(path):
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) <= 14, "a leaf recipe composes bases; put shared settings in recipes/base/"


def test_a_distillation_recipe_without_teacher_is_a_clear_error(cli_runner):
    result = cli_runner("recipe", "check", str(RECIPES / "cifar10" / "resnet18" / "ard.toml"),
                        "--set", "teacher=false", exit_code=2)
    assert "[objective]" in result.output and "'ard' needs a teacher" in result.output
    assert "[teacher]" in result.output
