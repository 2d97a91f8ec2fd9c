"""Periodic evaluation reads the validation split (never test images) and decides checkpoints/best."""

import json

import pytest
import torch
from safetensors.torch import load_file

import advdistill as ad
from advdistill.components import build_student, load_data
from advdistill.engine.checkpoint import load_weights, read_metadata
from advdistill.errors import RecipeError, TrainingError
from advdistill.evaluation.runner import run_metrics
from advdistill.testing import TINY_RECIPE

DATA = {**TINY_RECIPE["data"], "val_size": 16}
PERIODIC = {"kind": "periodic_eval", "limit": 16, "steps": 2}


def epoch_records(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "epoch"]


def test_best_checkpoint_is_the_epoch_with_the_highest_periodic_pgd(tiny_recipe, tmp_path):
    recipe = tiny_recipe(
        train={"epochs": 3, "batch_size": 16, "log_every": 2, "device": "cpu"}, data=DATA,
        callbacks={"progress": False, "periodic_eval": PERIODIC}, eval={"at_end": False},
    )
    run = ad.train(recipe, tmp_path / "run")
    records = epoch_records(run)
    scores = [r["eval"]["pgd"] for r in records]
    assert [set(r["eval"]) for r in records] == [{"clean", "pgd"}] * 3
    best_epoch = 1 + scores.index(max(scores))  # the first epoch reaching the maximum
    assert [r.get("best", False) for r in records][best_epoch - 1]
    meta = read_metadata(run / "checkpoints" / "best.safetensors")
    assert meta["epoch"] == best_epoch and meta["best"] == max(scores) and meta["best_metric"] == "pgd"
    assert meta["split"] == "val"
    if best_epoch == 3:
        last = load_file(str(run / "checkpoints" / "last.safetensors"))
        best = load_file(str(run / "checkpoints" / "best.safetensors"))
        assert all(torch.equal(last[k], best[k]) for k in last)


def test_values_are_those_of_the_metrics_on_the_validation_images(tiny_recipe, tmp_path):
    recipe = tiny_recipe(callbacks={"progress": False, "periodic_eval": PERIODIC}, data=DATA,
                         eval={"at_end": False})
    run = ad.train(recipe, tmp_path / "run")
    resolved = ad.load_recipe(run / "recipe.json")
    splits = load_data(resolved)
    model = build_student(resolved, splits.info)
    load_weights(run / "checkpoints" / "last.safetensors", model)
    # the recipe's attack is 8/255 with step 2/255; the callback runs 2 steps on the 16 validation images
    metrics = {"clean": ad.build("metric", "clean"),
               "pgd": ad.build("metric", "pgd", eps="8/255", step_size="2/255", steps=2, key="pgd")}
    values, errors, _ = run_metrics(model, splits.val_x, splits.val_y, metrics, device=torch.device("cpu"),
                                    limit=16, show_progress=False)
    assert errors == {} and values == epoch_records(run)[0]["eval"]


def test_it_reads_the_validation_split_and_never_the_test_split(tiny_recipe, tmp_path, monkeypatch):
    import advdistill_plugins.callbacks.periodic_eval as periodic

    seen = []
    original = periodic.run_metrics

    def spy(model, images, labels, *args, **kwargs):
        seen.append(images)
        return original(model, images, labels, *args, **kwargs)

    monkeypatch.setattr(periodic, "run_metrics", spy)
    recipe = tiny_recipe(callbacks={"progress": False, "periodic_eval": {"kind": "periodic_eval", "steps": 1}},
                         data=DATA, eval={"at_end": False})
    run = ad.train(recipe, tmp_path / "run")
    splits = load_data(ad.load_recipe(run / "recipe.json"))
    # limit left out: all 16 validation images, none of them a test image
    assert len(seen) == 1 and torch.equal(seen[0], splits.val_x)
    test_rows = {tuple(x.flatten().tolist()) for x in splits.test_x}
    assert not test_rows & {tuple(x.flatten().tolist()) for x in seen[0]}


def test_every_k_epochs_and_after_the_last(tiny_recipe, tmp_path):
    recipe = tiny_recipe(
        train={"epochs": 3, "batch_size": 16, "log_every": 2, "device": "cpu", "max_steps_per_epoch": 1},
        callbacks={"progress": False,
                   "periodic_eval": {"kind": "periodic_eval", "every": 2, "limit": 8, "steps": 1}},
        eval={"at_end": False}, data=DATA,
    )
    records = epoch_records(ad.train(recipe, tmp_path / "run"))
    assert ["eval" in r for r in records] == [False, True, True]


def test_a_failing_evaluation_stops_training_with_a_clear_error(tiny_recipe, tmp_path, monkeypatch):
    import advdistill_plugins.callbacks.periodic_eval as periodic

    monkeypatch.setattr(periodic, "run_metrics", lambda *a, **k: ({}, {"pgd": "ValueError: boom"}, {}))
    recipe = tiny_recipe(callbacks={"progress": False, "periodic_eval": {"kind": "periodic_eval"}}, data=DATA)
    with pytest.raises(TrainingError, match=r"after epoch 1 failed .*pgd: ValueError: boom"):
        ad.train(recipe, tmp_path / "run")


def test_without_a_validation_split_it_is_a_recipe_error(tiny_recipe, cli_runner, tmp_path):
    recipe = tiny_recipe(callbacks={"progress": False, "periodic_eval": {"kind": "periodic_eval"}})
    with pytest.raises(RecipeError, match=r"\[callbacks.periodic_eval\]: callback 'periodic_eval' evaluates on "
                                          r"the validation split, but \[data\] val_size = 0"):
        ad.train(recipe, tmp_path / "run")
    result = cli_runner("train", str(recipe), "--out", str(tmp_path / "cli"), exit_code=2)
    assert "data.val_size" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / "checkpoints").exists()
