"""The linearity callback writes the Taylor remainder share into each epoch record."""

import json

import pytest
import torch
from safetensors.torch import load_file

import advdistill as ad
from advdistill.components import build_student, load_data
from advdistill.engine.checkpoint import load_weights
from advdistill.errors import RecipeError
from advdistill.testing import TINY_RECIPE
from advdistill_plugins.metrics.common import uniform_perturbation
from advdistill_plugins.metrics.linearity import taylor_remainder

CALLBACKS = {"progress": False, "linearity": {"kind": "linearity", "limit": 16, "seed": 3}}
DATA = {**TINY_RECIPE["data"], "val_size": 16}  # the callback reads the validation split


def epoch_records(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "epoch"]


def test_each_epoch_records_the_metric_value_on_the_subset(tiny_recipe, tmp_path):
    recipe = tiny_recipe(callbacks=CALLBACKS, eval={"at_end": False}, data=DATA,
                         train={"epochs": 2, "batch_size": 16, "log_every": 2, "device": "cpu"})
    run = ad.train(recipe, tmp_path / "run")
    records = epoch_records(run)
    assert [type(r.get("linearity")) for r in records] == [float, float]
    # the last value: the remainder share of the final weights on the first 16 validation images,
    # eval mode, with ε drawn from a generator seeded with the callback's seed
    resolved = ad.load_recipe(run / "recipe.json")
    splits = load_data(resolved)
    model = build_student(resolved, splits.info).eval()
    load_weights(run / "checkpoints" / "last.safetensors", model)
    x = splits.val_x[:16].float() / 255
    eps = uniform_perturbation(x, 8 / 255, torch.Generator().manual_seed(3))
    expected = taylor_remainder(model, x, eps).double().mean().item()
    assert records[-1]["linearity"] == pytest.approx(expected, rel=1e-6)
    assert records[0]["linearity"] != records[1]["linearity"]


def test_training_rng_and_model_state_are_untouched(tiny_recipe, tmp_path):
    """With or without the callback, training gives the same weights (it uses its own generator)."""
    train = {"epochs": 2, "batch_size": 16, "log_every": 2, "device": "cpu"}
    base = dict(eval={"at_end": False}, train=train, data=DATA)
    with_cb = ad.train(tiny_recipe("a.toml", callbacks=CALLBACKS, **base), tmp_path / "a")
    without = ad.train(tiny_recipe("b.toml", callbacks={"progress": False}, **base), tmp_path / "b")
    a = load_file(str(with_cb / "checkpoints" / "last.safetensors"))
    b = load_file(str(without / "checkpoints" / "last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_k_epochs_and_after_the_last(tiny_recipe, tmp_path):
    callbacks = {"progress": False, "linearity": {"kind": "linearity", "every": 2, "limit": 8}}
    recipe = tiny_recipe(callbacks=callbacks, eval={"at_end": False}, data=DATA,
                         train={"epochs": 3, "batch_size": 16, "log_every": 2, "device": "cpu",
                                "max_steps_per_epoch": 1})
    records = epoch_records(ad.train(recipe, tmp_path / "run"))
    assert ["linearity" in r for r in records] == [False, True, True]


def test_without_a_validation_split_training_refuses(tiny_recipe, tmp_path):
    recipe = tiny_recipe(callbacks=CALLBACKS, data={**DATA, "val_size": 0})
    with pytest.raises(RecipeError, match=r"\[callbacks.linearity\].*val_size = 0"):
        ad.train(recipe, tmp_path / "run")
