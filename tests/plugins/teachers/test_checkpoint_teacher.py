import json

import pytest
import torch

import advdistill as ad
from advdistill.engine.checkpoint import save_weights
from advdistill.errors import CheckpointError, RecipeError


def fake_run(tmp_path, student: dict, num_classes=10, in_chans=3):
    """A run directory as `advdistill train` leaves it: recipe.json plus checkpoints/*.safetensors."""
    table = dict(student)
    kind = table.pop("kind")
    torch.manual_seed(0)
    model = ad.create_model(kind, num_classes=num_classes, in_chans=in_chans, **table)
    model.train()
    model(torch.rand(2, in_chans, 32, 32))  # move BN statistics away from their init
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "recipe.json").write_text(json.dumps({"schema": 1, "student": student}))
    save_weights(run / "checkpoints" / "best.safetensors", model, {"epoch": 3})
    return run, model.eval()


def assert_same(teacher, model, in_chans=3):
    x = torch.rand(2, in_chans, 32, 32)
    with torch.no_grad():
        assert torch.equal(teacher(x), model(x))
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_a_trained_student_becomes_the_next_teacher(tmp_path):
    run, model = fake_run(tmp_path, {"kind": "cifar_mobilenetv2"})
    teacher = ad.build("teacher", "checkpoint", path=str(run / "checkpoints" / "best.safetensors")).load(
        num_classes=10, in_chans=3)
    assert_same(teacher, model)


def test_normalization_of_the_student_is_rebuilt_from_recipe_json(tmp_path):
    student = {"kind": "small_cnn", "widths": [4, 8], "hidden": 8, "mean": [0.5], "std": [0.25]}
    run, model = fake_run(tmp_path, student, num_classes=4, in_chans=1)
    teacher = ad.build("teacher", "checkpoint", path=str(run / "checkpoints" / "best.safetensors")).load(
        num_classes=4, in_chans=1)
    assert_same(teacher, model, in_chans=1)


def test_explicit_architecture_outside_a_run_directory(tmp_path):
    _, model = fake_run(tmp_path, {"kind": "wideresnet", "depth": 10, "widen_factor": 1})
    loose = tmp_path / "loose.safetensors"
    save_weights(loose, model)
    with pytest.raises(RecipeError, match=r"not inside a run directory.*say which architecture"):
        ad.build("teacher", "checkpoint", path=str(loose)).load(num_classes=10, in_chans=3)
    loader = ad.build("teacher", "checkpoint", path=str(loose),
                      model={"kind": "wideresnet", "depth": 10, "widen_factor": 1})
    teacher = loader.load(num_classes=10, in_chans=3)
    assert_same(teacher, model)


def test_missing_and_mismatched_checkpoints(tmp_path):
    missing = ad.build("teacher", "checkpoint", path=str(tmp_path / "nope.safetensors"))
    with pytest.raises(CheckpointError, match=r"checkpoint not found: .*nope\.safetensors"):
        missing.load(num_classes=10, in_chans=3)
    run, _ = fake_run(tmp_path, {"kind": "wideresnet", "depth": 10, "widen_factor": 1})
    wider = ad.build("teacher", "checkpoint", path=str(run / "checkpoints" / "best.safetensors"),
                     model={"kind": "wideresnet", "depth": 10, "widen_factor": 2})
    with pytest.raises(CheckpointError, match="does not match the model WideResNet"):
        wider.load(num_classes=10, in_chans=3)


def test_check_files_needs_the_weights_and_their_architecture(tmp_path, monkeypatch):
    missing = ad.build("teacher", "checkpoint", path=str(tmp_path / "nope.safetensors"))
    with pytest.raises(CheckpointError, match=r"checkpoint not found: .*nope\.safetensors"):
        missing.check_files()
    run, model = fake_run(tmp_path, {"kind": "small_cnn", "widths": [4], "hidden": 8}, num_classes=4, in_chans=1)
    loose = tmp_path / "loose.safetensors"
    save_weights(loose, model)
    with pytest.raises(RecipeError, match="not inside a run directory"):  # load() would fail on it too
        ad.build("teacher", "checkpoint", path=str(loose)).check_files()
    monkeypatch.setattr("advdistill_plugins.teachers.checkpoint.build_from_table",
                        lambda *a, **k: pytest.fail("check_files built the model"))
    assert ad.build("teacher", "checkpoint", path=str(run / "checkpoints" / "best.safetensors")).check_files() is None
