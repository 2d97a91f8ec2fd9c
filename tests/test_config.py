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
    with pytest.raises(RecipeError, match="'eps' must be in"):
        build_config(Demo, {"eps": -1}, where="t")
    assert config_to_dict(Demo()) == {"eps": None, "surrogate": None, "model": None}
    assert attrs.has(Demo)
