import re

import attrs
import pytest
from attrs import define, field

from advdistill.config import (
    as_float,
    build_config,
    component_table,
    config_to_dict,
    optional_float,
    positive_or_none,
)
from advdistill.errors import RecipeError


def test_as_float_accepts_fractions_and_rejects_junk():
    assert as_float("8/255") == pytest.approx(8 / 255)
    assert as_float(" 2e-4 ") == 2e-4 and as_float(3) == 3.0
    for bad in ("8/0", "eight", True, [1]):
        with pytest.raises((TypeError, ValueError)):
            as_float(bad)


@define(frozen=True, kw_only=True)
class Demo:
    eps: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    surrogate: dict | None = field(default=None, converter=component_table("teacher", '{kind = "checkpoint"}'))
    model: dict | None = field(default=None, converter=component_table("model", '{kind = "small_cnn"}'))


def test_component_table_validates_nested_tables():
    ok = build_config(Demo, {"surrogate": {"kind": "checkpoint", "path": "x.safetensors"}}, where="t")
    assert ok.surrogate == {"kind": "checkpoint", "path": "x.safetensors"}
    assert build_config(Demo, {"model": {"kind": "timm:resnet18", "stem": "cifar"}}, where="t").model
    with pytest.raises(RecipeError, match=r"t \[surrogate\].*unknown teacher 'checkpiont'.*'checkpoint'"):
        build_config(Demo, {"surrogate": {"kind": "checkpiont"}}, where=lambda k: f"t [{k}]")
    with pytest.raises(RecipeError, match=r"unknown key 'pth'.*'path'"):
        build_config(Demo, {"surrogate": {"kind": "checkpoint", "pth": "x"}}, where="t")
    with pytest.raises(RecipeError, match="such as"):
        build_config(Demo, {"surrogate": "checkpoint"}, where="t")


def test_optional_positive_numbers():
    assert build_config(Demo, {"eps": "4/255"}, where="t").eps == pytest.approx(4 / 255)
    with pytest.raises(RecipeError, match="'eps' must be > 0, got -1"):
        build_config(Demo, {"eps": -1}, where="t")
    assert config_to_dict(Demo()) == {"eps": None, "surrogate": None, "model": None}
    assert attrs.has(Demo)


# -- every numeric recipe key has a documented, enforced range ----------------------------------

NUMERIC = re.compile(r"\b(int|float|ScheduledValue)\b")
#: values for required keys, so that one bad key at a time can be tried
REQUIRED = {"value": 1.0, "end": 1.0, "start": 1.0, "variant": "resnet18", "name": "Carmon2019Unlabeled",
            "path": "x.safetensors", "surrogate": "teacher"}


def config_classes():
    from advdistill.plugins import get_registry
    from advdistill.recipe.schema import EvalConfig, OptimConfig, TrainConfig

    found = {"[train]": TrainConfig, "[optim]": OptimConfig, "[eval]": EvalConfig}
    registry = get_registry()
    for info in registry.infos():
        if info.alias_of is None and info.kind != "command":
            component = registry.get(info.kind, info.name)
            config = component if attrs.has(component) else getattr(component, "Config", None)
            if config is not None:
                found[f"{info.kind} {info.name}"] = config
    return found


def numeric_fields(config):
    return [a for a in attrs.fields(config) if a.init and NUMERIC.search(str(a.type))]


@pytest.mark.parametrize(("where", "config"), list(config_classes().items()), ids=lambda v: str(v))
def test_every_numeric_key_has_a_range_and_rejects_nan_and_fractions(where, config):
    from advdistill.recipe.reference import describe_allowed

    base = {name: value for name, value in REQUIRED.items()
            if name in attrs.fields_dict(config) and attrs.fields_dict(config)[name].default is attrs.NOTHING}
    for key in numeric_fields(config):
        assert describe_allowed(key), f"{where}: '{key.name}' has no documented range"
        bad = 2.5 if re.search(r"\bint\b", str(key.type)) and "float" not in str(key.type) else float("nan")
        if "tuple" in str(key.type):
            bad = [bad]
        with pytest.raises(RecipeError) as err:
            build_config(config, {**base, key.name: bad}, where=where)
        message = str(err.value)
        assert f"'{key.name}'" in message and "Attribute(" not in message, message


@pytest.mark.parametrize(("override", "expected"), [
    ("optim.lr=-1", r"\[optim\]: 'lr' must be ≥ 0, got -1"),
    ("optim.lr=nan", r"invalid value for 'lr': expected a finite number, got nan"),
    ('optim.lr={kind = "linear", start = 0.1, end = -0.1}', r"'lr' must be ≥ 0 \(the linear schedule reaches -0.1\)"),
    ('optim.lr={kind = "step", value = 0.1, milestones = [2], gamma = -1}', r"schedule 'step': 'gamma' must be ≥ 0"),
    ("optim.betas=[2, 3]", r"'betas' must be in \[0, 1\), got 2.0"),
    ("optim.betas=[0.9]", r"'betas' must be 2 numbers"),
    ("train.grad_clip=-1", r"'grad_clip' must be > 0, got -1"),
    ("train.max_loss=-1", r"'max_loss' must be > 0, got -1"),
    ("train.epochs=2.5", r"\[train\]: 'epochs' must be an integer, got 2.5 \(float\)"),
    ("train.epochs=true", r"'epochs' must be an integer, got True \(bool\)"),
    ("train.seed=-3", r"'seed' must be an integer in \[0, "),
])
def test_recipe_check_refuses_numbers_out_of_range(override, expected, tiny_recipe, cli_runner):
    result = cli_runner("recipe", "check", str(tiny_recipe()), "--set", override, exit_code=2)
    assert re.search(expected, result.output), result.output
    assert "Traceback" not in result.output and "Attribute(" not in result.output
