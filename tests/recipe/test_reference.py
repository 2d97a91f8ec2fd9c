"""The generated recipe reference: meanings from #: comments, allowed values from validators,
defaults as written in a recipe; docs/recipes.md holds it and is never stale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from attrs import Factory, define, field
from attrs.validators import and_, deep_iterable, ge, gt, in_, instance_of, le, lt, optional

from advdistill.config import ScheduledValue, describe, in_range, one_of, positive_or_none, scheduled
from advdistill.recipe import reference
from advdistill.recipe.reference import (
    describe_default,
    describe_type,
    describe_validator,
    field_meanings,
    keys_of,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"


@define(frozen=True, kw_only=True)
class BaseConfig:
    #: the radius, in pixels
    eps: float = field(default=8 / 255, validator=in_range(0.0, 1.0))
    #: first line
    #: second line
    steps: int = field(default=10, validator=[instance_of(int), ge(1)])
    plain: str = field(default="a # not a comment", validator=one_of("a # not a comment", "b"))
    trailing: bool = field(default=False)  #: said after the field
    weight: ScheduledValue = scheduled({"kind": "linear", "end": 2.0})


@define(frozen=True, kw_only=True)
class ChildConfig(BaseConfig):
    steps: int = field(default=20, validator=[instance_of(int), ge(0)])  # redefined, no #: comment
    #: the child's own key
    name: str = field(validator=instance_of(str))


def _field(cls: type, name: str) -> attrs.Attribute:
    return attrs.fields_dict(cls)[name]


def test_meanings_come_from_the_comments_above_or_after_each_field():
    assert field_meanings(BaseConfig) == {
        "eps": "the radius, in pixels",
        "steps": "first line second line",
        "trailing": "said after the field",
    }


def test_inherited_and_redefined_fields_keep_the_base_class_comment():
    meanings = field_meanings(ChildConfig)
    assert meanings["steps"] == "first line second line"
    assert meanings["eps"] == "the radius, in pixels"
    assert meanings["name"] == "the child's own key"
    assert "plain" not in meanings


@pytest.mark.parametrize(("validator", "expected"), [
    (instance_of(int), ""),
    (in_(["a", "b"]), '"a", "b"'),
    (ge(1), "≥ 1"),
    (gt(0.5), "> 0.5"),
    (le(8 / 255), "≤ 8/255"),
    (lt(1e6), "< 1e6"),
    (optional(ge(0)), "≥ 0"),
    (and_(instance_of(int), ge(1), le(10)), "≥ 1, ≤ 10"),
    (deep_iterable(ge(1), instance_of(tuple)), "each item ≥ 1"),
    (in_range(0.0, 1.0), "[0, 1]"),
    (in_range(0.0, 1e6, low_open=True), "(0, 1e6]"),
    (one_of("linf", "l2"), '"linf", "l2"'),
    (positive_or_none, "> 0, or none"),
])
def test_validators_describe_what_they_accept(validator: Any, expected: str):
    assert describe_validator(validator) == expected


def test_a_validator_of_our_own_describes_itself_with_describe():
    def bare(_instance, _attribute, _value):
        pass

    assert describe_validator(bare) is None  # cannot describe itself: the reference says so
    assert describe_validator(optional(and_(instance_of(int), bare))) is None
    assert describe_validator(describe("a multiple of 8")(bare)) == "a multiple of 8"


def test_defaults_are_written_as_in_a_recipe():
    @define(frozen=True, kw_only=True)
    class Config:
        required: int
        none: float | None = None
        fraction: float = 2 / 255
        words: tuple[str, ...] = ("a", "b")
        table: dict = field(factory=dict)
        computed: int = field(default=Factory(lambda self: self.required + 1, takes_self=True))
        said: int = field(default=Factory(describe("1 more than required")(lambda self: 1), takes_self=True))
        weight: ScheduledValue = scheduled(0.5)
        schedule: ScheduledValue = scheduled({"kind": "linear", "end": 20})
        flag: bool = True

    got = {name: describe_default(a) for name, a in attrs.fields_dict(Config).items()}
    assert got == {
        "required": "required", "none": "none", "fraction": "2/255", "words": '["a", "b"]', "table": "{}",
        "computed": "computed", "said": "1 more than required", "weight": "0.5",
        "schedule": '{kind = "linear", end = 20}', "flag": "true",
    }


def test_types_in_recipe_words():
    @define(frozen=True, kw_only=True)
    class Config:
        a: int | None = None
        b: tuple[float, ...] = ()
        c: ScheduledValue = scheduled(1.0)
        d: dict[str, Any] | None = None
        e: str = ""

    got = {name: describe_type(a) for name, a in attrs.fields_dict(Config).items()}
    assert got == {"a": "int or none", "b": "list of float", "c": "float or schedule", "d": "table or none",
                   "e": "str"}


def test_a_key_row_joins_converter_and_validator_descriptions():
    rows = {row.key: row for row in keys_of(ChildConfig)}
    assert rows["eps"].allowed == "[0, 1]" and rows["eps"].default == "8/255"
    assert rows["steps"].allowed == "≥ 0" and rows["steps"].default == "20"
    assert rows["name"].default == "required"
    assert rows["weight"].type == "float or schedule" and rows["weight"].default == '{kind = "linear", end = 2}'


def _our_tables():
    return reference.tables(package=reference.DOCS_PACKAGE)


def test_every_key_of_the_core_and_of_our_components_says_what_it_means():
    missing = [f"{t.title} {k.key}" for t in _our_tables() for k in t.keys if not k.meaning]
    assert not missing, (
        "recipe keys without a meaning: " + ", ".join(missing)
        + ". Add a `#:` comment above each field of its config class."
    )


def test_every_validator_of_ours_describes_itself():
    undescribed = [f"{t.title} {k.key}" for t in _our_tables() for k in t.keys if reference.UNDESCRIBED in k.allowed]
    assert not undescribed, (
        "validators that cannot describe themselves: " + ", ".join(undescribed)
        + ". Build them with advdistill.config.in_range / one_of or attrs' validators, or decorate "
        "them with @advdistill.config.describe(\"what it accepts\")."
    )


def test_docs_recipes_md_holds_the_generated_reference():
    text = DOCS.read_text(encoding="utf-8")
    assert reference.BEGIN in text and reference.END in text
    assert text == reference.replace_block(text, reference.docs_block()), (
        "docs/recipes.md is stale: its generated key tables differ from the config classes. Regenerate "
        "them with `make docs` (= `python -m advdistill.recipe.reference docs/recipes.md`)."
    )


def test_the_generated_block_lists_every_component_of_the_distribution():
    block = reference.docs_block()
    for kind in reference.TABLE_KINDS:
        for name in reference.component_names(kind, package=reference.DOCS_PACKAGE):
            assert f"#### {kind} `{name}`" in block
    for section in reference.CORE_TABLES:
        assert f"#### `[{section}]`" in block


def test_replace_block_needs_the_markers():
    with pytest.raises(ValueError, match="markers"):
        reference.replace_block("no markers here", "x")
    doc = f"before\n{reference.BEGIN}\nold\n{reference.END}\nafter\n"
    assert reference.replace_block(doc, "new\n") == f"before\n{reference.BEGIN}\n\nnew\n\n{reference.END}\nafter\n"


# -- the command ---------------------------------------------------------------------------------

def test_recipe_keys_prints_one_component(cli_runner):
    out = cli_runner("recipe", "keys", "attack", "pgd").output
    assert out.startswith("attack `pgd`:")
    assert "eps" in out and "8/255" in out and "≥ 0" in out and "radius" in out


def test_recipe_keys_of_a_core_table_in_markdown(cli_runner):
    out = cli_runner("recipe", "keys", "train", "--markdown").output
    assert "#### `[train]`" in out and "| `epochs` | int | `1` | integer ≥ 1 |" in out


def test_recipe_keys_of_a_kind_lists_every_component_of_it(cli_runner):
    out = cli_runner("recipe", "keys", "schedule").output
    for name in ("constant", "linear", "step", "cosine"):
        assert f"schedule `{name}`" in out


def test_recipe_keys_errors(cli_runner):
    assert "Did you mean 'attack'" in cli_runner("recipe", "keys", "atack", exit_code=2).output
    assert "takes no NAME" in cli_runner("recipe", "keys", "train", "x", exit_code=2).output
    assert "Did you mean 'pgd'" in cli_runner("recipe", "keys", "attack", "pgf", exit_code=2).output
