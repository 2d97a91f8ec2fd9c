"""[data] val_size / val_seed: core keys of the data table, defaults per data set, recipe.json."""

import json

import pytest

import advdistill as ad
from advdistill.errors import RecipeError
from advdistill.recipe import load_recipe


def recipe(tmp_path, data, name="r.toml"):
    path = tmp_path / name
    path.write_text(f'schema = 1\n[data]\n{data}\n[student]\nkind = "small_cnn"\n')
    return path


@pytest.mark.parametrize(("data", "expected"), [
    ('kind = "cifar10"', 1000), ('kind = "cifar100"', 1000), ('kind = "svhn"', 1000),
    ('kind = "tiny_imagenet"', 1000), ('kind = "mnist5k"', 500), ('kind = "synthetic"', 0),
])
def test_defaults_come_from_the_data_set(tmp_path, data, expected):
    resolved = load_recipe(recipe(tmp_path, data))
    assert resolved.val.val_size == expected and resolved.val.val_seed == 0


def test_the_keys_are_resolved_into_recipe_json_and_read_back(tmp_path):
    resolved = load_recipe(recipe(tmp_path, 'kind = "synthetic"\nn_train = 40\nval_size = 8\nval_seed = 3'))
    assert resolved.val.val_size == 8 and resolved.val.val_seed == 3
    data = resolved.to_dict()["data"]
    assert data == {**data, "kind": "synthetic", "n_train": 40, "val_size": 8, "val_seed": 3}
    # the data set's own config never sees them
    assert not hasattr(resolved.data.config, "val_size")
    saved = tmp_path / "recipe.json"
    saved.write_text(json.dumps({**resolved.to_dict(), "recipe_hash": resolved.hash}))
    again = load_recipe(saved)
    assert again.val == resolved.val and again.hash == resolved.hash
    # an override reaches them like any key
    assert load_recipe(saved, ["data.val_size=4"]).val.val_size == 4
    assert resolved.with_overrides(["data.val_seed=9"]).val.val_seed == 9


def test_defaults_are_written_resolved(tmp_path):
    data = load_recipe(recipe(tmp_path, 'kind = "mnist5k"')).to_dict()["data"]
    assert data["val_size"] == 500 and data["val_seed"] == 0


@pytest.mark.parametrize("value", ["-1", "2.5", "true", '"100"'])
def test_bad_values_are_errors_naming_the_key(tmp_path, value):
    with pytest.raises(RecipeError, match=r"r\.toml.*\[data\].*val_size"):
        load_recipe(recipe(tmp_path, f'kind = "synthetic"\nval_size = {value}'))


def test_a_bad_seed_and_unknown_data_keys_are_still_errors(tmp_path):
    with pytest.raises(RecipeError, match="val_seed"):
        load_recipe(recipe(tmp_path, 'kind = "synthetic"\nval_seed = "x"'))
    with pytest.raises(RecipeError, match=r"unknown key 'val_sise'. Did you mean 'val_size'"):
        load_recipe(recipe(tmp_path, 'kind = "synthetic"\nval_sise = 3'))


def test_too_large_a_validation_split_fails_when_the_data_is_loaded(tmp_path):
    from advdistill.components import load_data

    resolved = load_recipe(recipe(tmp_path, 'kind = "synthetic"\nn_train = 10\nval_size = 10'))
    with pytest.raises(RecipeError, match=r"val_size = 10 leaves no training image.*10 training images"):
        load_data(resolved)
    splits = load_data(resolved.with_overrides(["data.val_size=4"]))
    assert splits.n_val == 4 and splits.train_x.shape[0] == 6


def test_the_validation_split_does_not_depend_on_the_training_seed(tmp_path):
    from advdistill.components import load_data

    path = recipe(tmp_path, 'kind = "synthetic"\nn_train = 40\nval_size = 8')
    a = load_data(ad.load_recipe(path, ["train.seed=1"]))
    b = load_data(ad.load_recipe(path, ["train.seed=2"]))
    c = load_data(ad.load_recipe(path, ["data.val_seed=1"]))
    assert a.val_x.equal(b.val_x) and not a.val_x.equal(c.val_x)
