import json

import pytest

from advdistill.errors import RecipeError
from advdistill.recipe import deep_merge, load_recipe, parse_override


def write(path, text):
    path.write_text(text)
    return path


BASE = """
schema = 1
[data]
kind = "synthetic"
n_train = 32
[student]
kind = "small_cnn"
widths = [4, 8]
[attack]
kind = "pgd"
eps = "8/255"
steps = 3
[objective]
kind = "pgd_at"
[train]
epochs = 2
"""


def test_deep_merge_merges_tables_and_replaces_lists():
    merged = deep_merge({"a": {"x": 1, "l": [1, 2]}, "b": 1}, {"a": {"y": 2, "l": [3]}})
    assert merged == {"a": {"x": 1, "y": 2, "l": [3]}, "b": 1}


def test_extends_chain_and_fraction_strings(tmp_path):
    write(tmp_path / "base.toml", BASE)
    child = write(tmp_path / "child.toml", 'schema = 1\nextends = "base.toml"\n[attack]\nsteps = 5\n'
                  '[student]\nwidths = [2]\n')
    recipe = load_recipe(child)
    assert recipe.attack.config.steps == 5
    assert recipe.attack.config.eps == pytest.approx(8 / 255)
    assert recipe.student.config.widths == (2,)  # lists are replaced, not merged
    assert recipe.train.epochs == 2
    assert recipe.name == "child"


def test_extends_cycle_is_reported(tmp_path):
    write(tmp_path / "a.toml", 'schema = 1\nextends = "b.toml"\n')
    write(tmp_path / "b.toml", 'schema = 1\nextends = "a.toml"\n')
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(tmp_path / "a.toml")


def test_missing_parent_names_both_files(tmp_path):
    child = write(tmp_path / "c.toml", 'schema = 1\nextends = "nope.toml"\n')
    with pytest.raises(RecipeError, match=r"c\.toml: extends 'nope\.toml'"):
        load_recipe(child)


def test_overrides_replace_values(tmp_path):
    path = write(tmp_path / "r.toml", BASE)
    recipe = load_recipe(path, ["attack.steps=7", "optim.lr=0.05", "attack.kind=pgd", "attack.eps=4/255"])
    assert recipe.attack.config.steps == 7
    assert recipe.optim.lr.to_json() == 0.05
    assert recipe.attack.config.eps == pytest.approx(4 / 255)


def test_override_with_schedule_table(tmp_path):
    path = write(tmp_path / "r.toml", BASE)
    recipe = load_recipe(path, ['optim.lr={kind = "step", value = 0.1, milestones = [1]}'])
    assert recipe.optim.lr.kind == "step"


def test_parse_override_errors():
    assert parse_override("a.b=[1, 2]") == (("a", "b"), [1, 2])
    assert parse_override("a=pgd") == (("a",), "pgd")
    with pytest.raises(RecipeError, match="KEY=VALUE"):
        parse_override("nonsense")
    with pytest.raises(RecipeError, match="cannot parse"):
        parse_override("a=[1, 2")


def test_unknown_key_names_file_table_and_closest_key(tmp_path):
    write(tmp_path / "base.toml", BASE)
    child = write(tmp_path / "child.toml", 'schema = 1\nextends = "base.toml"\n[attack]\nstpes = 5\n')
    with pytest.raises(RecipeError) as err:
        load_recipe(child)
    message = str(err.value)
    assert "child.toml [attack.stpes]" in message
    assert "Did you mean 'steps'" in message


def test_unknown_key_from_override_names_the_override(tmp_path):
    path = write(tmp_path / "r.toml", BASE)
    with pytest.raises(RecipeError, match=r"--set attack.epz=0.1 \[attack.epz\].*'eps'"):
        load_recipe(path, ["attack.epz=0.1"])


def test_unknown_component_suggests(tmp_path):
    path = write(tmp_path / "r.toml", BASE.replace('kind = "pgd_at"', 'kind = "pgd_att"'))
    with pytest.raises(RecipeError, match=r"unknown objective 'pgd_att'\. Did you mean 'pgd_at'"):
        load_recipe(path)


def test_invalid_value_is_explained(tmp_path):
    path = write(tmp_path / "r.toml", BASE)
    with pytest.raises(RecipeError, match="eps"):
        load_recipe(path, ["attack.eps=abc/255"])
    with pytest.raises(RecipeError, match="'norm' must be one of"):
        load_recipe(path, ["attack.norm=linfinity"])
    with pytest.raises(RecipeError, match="train"):
        load_recipe(path, ["train.epochs=0"])


def test_schema_and_top_level_keys(tmp_path):
    with pytest.raises(RecipeError, match="schema = 1"):
        load_recipe(write(tmp_path / "a.toml", BASE.replace("schema = 1", "")))
    with pytest.raises(RecipeError, match="Did you mean 'objective'"):
        load_recipe(write(tmp_path / "b.toml", BASE + "\n[objectve]\nkind = 'x'\n"))


def test_invalid_toml_names_file(tmp_path):
    with pytest.raises(RecipeError, match=r"bad\.toml: invalid TOML"):
        load_recipe(write(tmp_path / "bad.toml", "schema = = 1"))


def test_method_needing_a_teacher_fails_before_training(tmp_path):
    path = write(tmp_path / "r.toml", BASE.replace('kind = "pgd_at"', 'kind = "rslad"'))
    with pytest.raises(RecipeError, match=r"\[objective\].*'rslad' needs a teacher.*\[teacher\]"):
        load_recipe(path)


def test_false_removes_inherited_entries(tmp_path):
    write(tmp_path / "base.toml", BASE + '\n[callbacks.periodic_eval]\nkind = "periodic_eval"\n')
    child = write(tmp_path / "child.toml", 'schema = 1\nextends = "base.toml"\n[callbacks]\nperiodic_eval = false\n')
    assert "periodic_eval" in load_recipe(tmp_path / "base.toml").callbacks
    assert "periodic_eval" not in load_recipe(child).callbacks


def test_resolved_recipe_round_trips_through_json(tmp_path):
    recipe = load_recipe(write(tmp_path / "r.toml", BASE), ["optim.lr={kind='linear', end=0.2}"])
    dumped = {**recipe.to_dict(), "recipe_hash": recipe.hash}
    again = load_recipe(write(tmp_path / "recipe.json", json.dumps(dumped)))
    assert again.to_dict() == recipe.to_dict()
    assert again.hash == recipe.hash


def test_hash_changes_with_content(tmp_path):
    path = write(tmp_path / "r.toml", BASE)
    assert load_recipe(path).hash == load_recipe(path).hash
    assert load_recipe(path).hash != load_recipe(path, ["attack.steps=4"]).hash


def test_a_table_level_error_names_every_source_of_the_table(tmp_path):
    write(tmp_path / "base.toml", BASE)
    child = write(tmp_path / "child.toml", 'schema = 1\nextends = "base.toml"\n')
    # mean without std is refused by the config as a whole, not by one key
    with pytest.raises(RecipeError) as err:
        load_recipe(child, ["student.mean=[0.5]"])
    message = str(err.value)
    assert "base.toml + --set student.mean=[0.5] [student]" in message


LATIN1 = 'schema = 1\nname = "café"\ndescription = "réglage"\n'.encode("latin-1")
GARBAGE = bytes(range(256)) * 8


@pytest.mark.parametrize(("content", "expected"), [
    (LATIN1, r"not UTF-8 text \(byte 0xe9 at line 2, column 12; saved as Latin-1.*iconv -f latin1"),
    (GARBAGE, r"not a text file \(binary data"),
])
def test_non_utf8_recipes_are_a_clear_error_in_every_command(content, expected, tmp_path, cli_runner):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(RecipeError, match=expected):
        load_recipe(path)
    for args in (["recipe", "check", str(path)], ["train", str(path), "--out", str(tmp_path / "run")],
                 ["eval", "--recipe", str(path), "--checkpoint", str(tmp_path / "w.safetensors")]):
        result = cli_runner(*args, exit_code=2)
        assert str(path) in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "run").exists(), "nothing is created for a recipe that cannot be read"


def test_binary_recipe_json_names_the_way_out(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.json").write_bytes(GARBAGE)
    with pytest.raises(RecipeError, match=r"not a text file.*damaged.*--recipe ORIGINAL\.toml"):
        load_recipe(run / "recipe.json")
