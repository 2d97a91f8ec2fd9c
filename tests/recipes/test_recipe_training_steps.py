"""Each method's shipped recipe runs one real training step, shrunk with --set overrides.

The cases are the standard grid's CIFAR-10 / ResNet-18 leaves (recipes/leaves.toml) and the
IGDM paper's recipes that use a method base of their own (recipes/paper/base/).

Data, student and teacher are replaced by tiny stand-ins (synthetic data, a small CNN, a
``checkpoint`` teacher saved here), so the test needs neither CIFAR nor RobustBench weights;
everything else (attack, objective, IGDM, BN policy, optimizer) is the shipped recipe's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import advdistill as ad
from advdistill.engine.checkpoint import save_weights
from advdistill.interfaces import Progress
from advdistill.plugins import get_registry
from advdistill.recipe.loading import load_chain
from advdistill_recipes import generate

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
CASES = [f"cifar10/resnet18/{leaf}" for leaf in generate.read_table()["standard"]["leaves"]]
# the paper cells whose method base is their own (the IGDM authors' ARD, RSLAD and AdaAD + IGDM)
CASES += [f"paper/cifar100/resnet18/bdm_at/{leaf}" for leaf in ("ard", "ard+igdm", "rslad+igdm", "adaad+igdm")]
CASES += ["paper/cifar100/resnet18/bdm_at/adaad-no-tin"]
TEACHER_ARCH = '{kind = "small_cnn", widths = [6], hidden = 8}'


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(11)
    model = ad.create_model("small_cnn", num_classes=4, in_chans=3, widths=[6], hidden=8)
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    save_weights(path, model)
    return path


def tiny_overrides(recipe: Path, teacher: Path) -> list[str]:
    overrides = [
        # 4 validation images: the shipped recipes evaluate periodically on the validation split
        'data={kind = "synthetic", n_train = 16, n_test = 8, num_classes = 4, image_size = 8, val_size = 4}',
        'student={kind = "small_cnn", widths = [4], hidden = 8}',
        "train.device=cpu", "train.batch_size=8", "train.max_steps_per_epoch=1", "eval.at_end=false",
        "attack.steps=2",
    ]
    if "teacher" in load_chain(recipe)[0]:
        table = f'{{kind = "checkpoint", path = "{teacher.as_posix()}", model = {TEACHER_ARCH}}}'
        overrides.append(f"teacher={table}")
    return overrides


@pytest.mark.parametrize("name", CASES)
def test_method_recipe_runs_a_training_step(name, teacher_checkpoint, tmp_path):
    from advdistill.engine.trainer import Trainer

    path = RECIPES / f"{name}.toml"
    method, igdm, no_tin = generate.split_leaf(path.stem)
    recipe = ad.load_recipe(path, tiny_overrides(path, teacher_checkpoint))
    trainer = Trainer(recipe, tmp_path / "run")
    before = [p.detach().clone() for p in trainer.student.parameters()]
    teacher_before = None if trainer.teacher is None else [p.clone() for p in trainer.teacher.parameters()]
    x, y = next(iter(trainer.train_loader))
    epochs = recipe.train.epochs
    # the last epoch: IAD's introspection and IGDM's full weight are on
    loss, logs = trainer.train_step(x, y, Progress(epochs, epochs, 0, 1), lr=0.01)
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.student.parameters()))
    if teacher_before is not None:
        assert all(torch.equal(a, b) for a, b in zip(teacher_before, trainer.teacher.parameters()))
    assert ("igdm" in logs) is igdm
    if method == "iad":
        assert "iad_introspection" in logs
    method_attack = load_chain(RECIPES / "base" / "methods" / f"{method}.toml")[0]["attack"]["kind"]
    assert type(trainer.attack) is get_registry().get("attack", "pgd" if no_tin else method_attack)
    assert trainer.attack.config.steps == 2
