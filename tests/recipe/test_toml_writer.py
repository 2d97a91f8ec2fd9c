"""The TOML writer: every value it writes reads back (tomllib) as the value it was given."""

import math

import pytest

from advdistill.recipe.loading import parse_override, tomllib
from advdistill.recipe.toml_writer import to_toml, toml_value


@pytest.mark.parametrize("value", [1, -2.5, 1e-5, "8/255", True, [1, 2], {"kind": "step", "milestones": [5]},
                                   'quote " and \\ backslash', "two\nlines", {"odd key": 1, "x.y": [0.5, "a"]}])
def test_toml_value_round_trips(value):
    assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value
    assert parse_override(f"a.b={toml_value(value)}") == (("a", "b"), value)


def test_non_finite_floats_and_unknown_types():
    assert math.isinf(tomllib.loads(f"v = {toml_value(-math.inf)}")["v"])
    assert math.isnan(tomllib.loads(f"v = {toml_value(math.nan)}")["v"])
    with pytest.raises(TypeError, match="cannot write set"):
        toml_value({1, 2})


def test_to_toml_writes_top_level_values_then_tables():
    data = {"schema": 1, "name": "x", "train": {"epochs": 2, "lr": {"kind": "linear", "end": 0.5}},
            "aux": {"igdm": {"kind": "igdm"}}, "eval metrics": {"a b": True}}
    text = to_toml(data)
    assert text.startswith('schema = 1\nname = "x"\n\n[train]\n')
    assert tomllib.loads(text) == data
