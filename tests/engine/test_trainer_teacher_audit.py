"""`train` audits its teacher at start: the numbers go to metrics.jsonl, a broken teacher is refused,
``train.audit_teacher = false`` skips it, and the audit does not change the training."""

import json

import pytest
import torch
from safetensors.torch import load_file

import advdistill as ad
from advdistill.engine.checkpoint import save_weights
from advdistill.errors import CheckpointError
from advdistill.evaluation.teacher_audit import TRAIN_N, TRAIN_ROBUST_N

TEACHER_ARCH = {"kind": "small_cnn", "widths": [4], "hidden": 8}


def distill(tiny_recipe, teacher_path, eps=8 / 255, **tables):
    return tiny_recipe(
        "student.toml", objective={"kind": "rslad"}, attack={"kind": "rslad_kl", "steps": 2, "eps": eps},
        teacher={"kind": "checkpoint", "path": str(teacher_path), "model": TEACHER_ARCH}, **tables,
    )


@pytest.fixture
def trained_teacher(tiny_recipe, tmp_path):
    run = ad.train(tiny_recipe("teacher.toml", train={"epochs": 2, "batch_size": 16, "device": "cpu"}),
                   tmp_path / "teacher")
    return run / "checkpoints" / "last.safetensors"


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_the_audit_record_opens_metrics_jsonl(tiny_recipe, trained_teacher, tmp_path):
    run = ad.train(distill(tiny_recipe, trained_teacher, eps=0.1), tmp_path / "student")
    audit = records(run)[0]
    # attacked at the run's threat model, not at a default radius
    assert audit["threat"] == {"norm": "linf", "eps": 0.1, "source": "[attack]"}
    assert audit["event"] == "teacher_audit" and audit["status"] == "ok"
    assert audit["name"] == str(trained_teacher) and audit["dataset"] == "synthetic"
    assert audit["n"] == min(TRAIN_N, 32) and audit["robust_n"] == min(TRAIN_ROBUST_N, 32)
    assert audit["attack"] == "pgd20" and 0 <= audit["robust"] <= audit["clean"] <= 100
    assert audit["published"] is None  # our own checkpoint: nothing published
    # the same numbers as the audit run by hand on the same images
    teacher = ad.build("teacher", "checkpoint", path=str(trained_teacher), model=TEACHER_ARCH).load(
        num_classes=4, in_chans=1)
    splits = ad.build("dataset", "synthetic", n_train=64, n_test=32, num_classes=4, image_size=8, in_chans=1).load()
    with torch.no_grad():
        correct = (teacher(splits.test_x.float() / 255).argmax(1) == splits.test_y).float().mean().item()
    assert audit["clean"] == pytest.approx(100 * correct)


def test_the_audit_does_not_change_the_training(tiny_recipe, trained_teacher, tmp_path):
    on = ad.train(distill(tiny_recipe, trained_teacher), tmp_path / "on")
    off = ad.train(distill(tiny_recipe, trained_teacher, train={"epochs": 1, "batch_size": 16, "log_every": 2,
                                                                "device": "cpu", "audit_teacher": False}),
                   tmp_path / "off")
    a, b = (load_file(str(run / "checkpoints" / "last.safetensors")) for run in (on, off))
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert "teacher_audit" not in {r["event"] for r in records(off)}
    assert records(on)[0]["event"] == "teacher_audit" and len(records(on)) > 1


def test_a_teacher_at_chance_is_refused(tiny_recipe, tmp_path):
    # zeroed weights (a broken file): every image gets class 0
    model = ad.create_model("small_cnn", num_classes=10, in_chans=1, widths=[4], hidden=8)
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    path = tmp_path / "zero.safetensors"
    save_weights(path, model)
    data = {"kind": "synthetic", "n_train": 32, "n_test": 1000, "num_classes": 10, "image_size": 8, "in_chans": 1}
    recipe = ad.load_recipe(distill(tiny_recipe, path, data=data))
    with pytest.raises(CheckpointError) as error:
        ad.train(recipe, tmp_path / "refused")
    message = str(error.value)
    assert "near chance" in message and "on the first 1000 test images" in message
    assert "train.audit_teacher=false" in message and "advdistill teacher audit" in message
    assert not (tmp_path / "refused").exists()  # refused before anything was written
    skipped = recipe.with_overrides(["train.audit_teacher=false", "train.max_steps_per_epoch=1", "eval.at_end=false"])
    ad.train(skipped, tmp_path / "skipped")  # the audit is off: trains
