"""[eval] checks: true/false or a table of settings (ChecksConfig), validated, written to recipe.json."""

import json

import pytest

from advdistill.errors import RecipeError
from advdistill.recipe import load_recipe
from advdistill.recipe.schema import ChecksConfig


def recipe(tmp_path, eval_table=""):
    path = tmp_path / "r.toml"
    path.write_text(f'schema = 1\n[data]\nkind = "synthetic"\n[student]\nkind = "small_cnn"\n{eval_table}')
    return path


def test_on_by_default_with_the_documented_defaults(tmp_path):
    checks = load_recipe(recipe(tmp_path)).eval.checks
    assert checks == ChecksConfig()
    assert (checks.enabled, checks.n, checks.margin, checks.alpha, checks.steps_factor, checks.restarts) == (
        True, 100, 1.0, 0.05, 5, 1)
    assert (checks.unbounded_eps, checks.unbounded_steps, checks.unbounded_max_accuracy) == (1.0, 10, 1.0)
    assert (checks.black_box, checks.square_queries, checks.zero_grad_tol, checks.zero_grad_max_share) == (
        "auto", 100, 0.0, 1.0)
    assert (checks.repeats, checks.determinism_tol, checks.skip) == (3, 1e-4, ())


def test_true_false_and_a_table(tmp_path):
    assert not load_recipe(recipe(tmp_path, "[eval]\nchecks = false")).eval.checks.enabled
    assert load_recipe(recipe(tmp_path, "[eval]\nchecks = true")).eval.checks == ChecksConfig()
    table = load_recipe(recipe(tmp_path, '[eval.checks]\nn = 500\nskip = ["black_box"]\nmargin = "1/2"'))
    assert table.eval.checks == ChecksConfig(n=500, skip=("black_box",), margin=0.5)


def test_written_to_recipe_json_and_read_back_with_the_same_hash(tmp_path):
    resolved = load_recipe(recipe(tmp_path, '[eval.checks]\nn = 50\nskip = ["logits"]'))
    assert resolved.to_dict()["eval"]["checks"]["skip"] == ["logits"]
    saved = tmp_path / "recipe.json"
    saved.write_text(json.dumps({**resolved.to_dict(), "recipe_hash": resolved.hash}))
    again = load_recipe(saved)
    assert again.eval.checks == resolved.eval.checks and again.hash == resolved.hash
    assert load_recipe(saved, ["eval.checks.n=7"]).eval.checks.n == 7
    assert not load_recipe(saved, ["eval.checks=false"]).eval.checks.enabled


@pytest.mark.parametrize(("table", "message"), [
    ("[eval.checks]\nnn = 5", "unknown key 'nn'. Did you mean 'n'?"),
    ('[eval.checks]\nskip = ["ordring"]', "unknown check 'ordring'. Did you mean 'ordering'?"),
    ('[eval.checks]\nskip = "ordering"', "expected a list of check names"),
    ("[eval]\nchecks = 3", "expected true, false or a table of check settings"),
    ("[eval.checks]\nalpha = 1.5", "'alpha' must be in (0, 1), got 1.5"),
    ("[eval.checks]\nn = 0", "'n' must be an integer ≥ 1"),
    ("[eval.checks]\nn = true", "'n' must be an integer"),
    ("[eval.checks]\nrepeats = 1", "'repeats' must be an integer ≥ 2"),
    ("[eval.checks]\nmargin = -1", "'margin' must be in [0, 100]"),
    ('[eval.checks]\nblack_box = "squares"', "'black_box' must be one of 'auto', 'square', 'transfer', 'both'"),
    ("[eval.checks]\nunbounded_eps = 0", "'unbounded_eps' must be > 0"),
])
def test_bad_settings_name_the_file_and_the_key(tmp_path, table, message):
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe(tmp_path, table))
    assert message in str(info.value)
    assert "r.toml" in str(info.value) and "[eval.checks]" in str(info.value)
