"""The SVHN and Tiny-ImageNet data bases compose with the student and method bases as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

import advdistill as ad
from advdistill.recipe.loading import load_chain

BASE = Path(__file__).resolve().parents[2] / "recipes" / "base"
METHODS = sorted(p.stem for p in (BASE / "methods").glob("*.toml"))  # every method's base recipe


def leaf(tmp_path: Path, data: str, student: str, method: str) -> Path:
    """A leaf recipe as the shipped CIFAR ones are written: data, student, method (+ a teacher)."""
    parents = [BASE / "data" / f"{data}.toml", BASE / "students" / f"{student}.toml",
               BASE / "methods" / f"{method}.toml"]
    path = tmp_path / f"{data}-{student}-{method}.toml"
    lines = ["schema = 1", f"extends = [{', '.join(repr(p.as_posix()) for p in parents)}]"]
    lines += ["[teacher]", 'kind = "checkpoint"', 'path = "teacher.safetensors"', 'model = {kind = "small_cnn"}']
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("method", METHODS)
def test_svhn_budget_lr_and_augmentation(tmp_path, method):
    path = leaf(tmp_path, "svhn", "resnet18", method)
    data, _ = load_chain(path)
    assert data["data"] == {"kind": "svhn", "root": "data", "use_extra": False}
    attack = data["attack"]
    assert (attack["eps"], attack["step_size"], attack["steps"]) == ("8/255", "1/255", 10)
    lr = data["optim"]["lr"]
    # the method decides the schedule's shape, the data set its base value
    assert lr["kind"] == "step" and lr["value"] == 0.01
    assert lr["milestones"] == ([215, 260, 285] if method == "rslad" else [100, 150])
    assert data["train"]["augment"] == "none"
    recipe = ad.load_recipe(path)  # every key valid for its component
    assert recipe.data.config.use_extra is False and recipe.train.augment == "none"


@pytest.mark.parametrize("method", ["pgd_at", "rslad"])
def test_tiny_imagenet_budget_and_student(tmp_path, method):
    path = leaf(tmp_path, "tiny_imagenet", "resnet18_tiny", method)
    data, _ = load_chain(path)
    assert data["data"] == {"kind": "tiny_imagenet", "root": "data"}
    attack = data["attack"]
    assert (attack["eps"], attack["step_size"], attack["steps"]) == ("8/255", "2/255", 10)
    assert data["optim"]["lr"]["value"] == 0.1 and data["train"]["augment"] == "crop_flip"
    recipe = ad.load_recipe(path)
    assert recipe.student.name == "cifar_resnet18" and recipe.student.config.stem == "tiny"
    assert recipe.data.config.cache is True and recipe.data.config.cache_dir is None


def test_data_bases_keep_the_evaluation_suite(tmp_path):
    for data in ("svhn", "tiny_imagenet"):
        recipe = ad.load_recipe(leaf(tmp_path, data, "resnet18", "pgd_at"))
        assert set(recipe.eval.metrics) == {"clean", "pgd20", "autoattack"}
        pgd20 = recipe.eval.metrics["pgd20"].config
        assert (pgd20.eps, pgd20.step_size, pgd20.steps) == (8 / 255, 2 / 255, 20)
