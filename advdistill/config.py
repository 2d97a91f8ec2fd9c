"""Helpers for component config classes (attrs) and their validation errors.

Plugin authors write configs like::

    @define(frozen=True, kw_only=True)
    class Config:
        eps: float = field(default=8 / 255, converter=as_float, validator=in_range(0, 1))
        steps: int = field(default=10, validator=[instance_of(int), ge(1)])
        weight: ScheduledValue = scheduled(1.0)   # a number, or a schedule table

and get recipe-level validation, suggestions for misspelled keys and JSON round-trips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from attrs import define, field

from advdistill.errors import RecipeError, did_you_mean

if TYPE_CHECKING:
    from advdistill.interfaces import Progress, Schedule

F = TypeVar("F", bound=Callable[..., Any])


def as_float(value: Any) -> float:
    """A float from a number or a string such as ``"8/255"``, ``"0.3"`` or ``"2e-4"``."""
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got the boolean {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        num, slash, den = text.partition("/")
        try:
            result = float(num) / float(den) if slash else float(text)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"expected a number or a fraction like '8/255', got {value!r}") from None
        return result
    raise TypeError(f"expected a number or a fraction like '8/255', got {type(value).__name__} {value!r}")


def as_float_tuple(value: Any) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"expected a list of numbers, got {value!r}")
    return tuple(as_float(v) for v in value)


def as_int_tuple(value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"expected a list of integers, got {value!r}")
    items = tuple(value)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise TypeError(f"expected a list of integers, got {value!r}")
    return items


def optional_float(value: Any) -> float | None:
    """attrs converter: None stays None; numbers and ``"8/255"`` strings become floats."""
    return None if value is None else as_float(value)


def optional_float_tuple(value: Any) -> tuple[float, ...] | None:
    """attrs converter: None stays None; a list of numbers (or ``"8/255"`` strings) becomes a tuple of floats."""
    return None if value is None else as_float_tuple(value)


def describe(text: str) -> Callable[[F], F]:
    """Attach to a validator, converter or computed default the phrase the recipe reference prints.

    ``advdistill recipe keys`` (and the generated tables of docs/recipes.md) show it in the
    "allowed" column (validators, converters) or the "default" column (a default factory)::

        @describe("a multiple of 8")
        def multiple_of_8(_instance, attribute, value): ...

    Validators made by :func:`in_range` and :func:`one_of` describe themselves; attrs' own
    (``instance_of``, ``in_``, ``ge``/``gt``/``le``/``lt``, ``optional``, ``and_``,
    ``deep_iterable``, ...) are described from their attributes.
    """

    def attach(target: F) -> F:
        target.description = text  # type: ignore[attr-defined]
        return target

    return attach


def format_number(value: float) -> str:
    """A number as a person writes it in a recipe: ``1``, ``0.5``, ``8/255``, ``1e6``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if value.is_integer():
        exponent = math.log10(abs(value)) if value else 0.0
        if abs(value) >= 1e5 and exponent.is_integer():
            return f"{'-' if value < 0 else ''}1e{int(exponent)}"
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    text = repr(value)
    fraction = Fraction(value).limit_denominator(255)
    if len(text) > 8 and float(fraction) == value:  # 0.03137254901960784 is 8/255, 0.8333333333333334 is 5/6
        return f"{fraction.numerator}/{fraction.denominator}"
    return text


# -- validators with a documented range --------------------------------------------------------
# Each describes itself (see :func:`describe`): the recipe reference shows the range, and a test
# checks that every numeric recipe key has one.

Validator = Callable[[Any, Any, Any], None]


def _with_range(check: Validator, text: str) -> Validator:
    return describe(text)(check)


def interval_text(low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = False) -> str:
    """``"≥ 0"``, ``"> 0"``, ``"[0, 1)"``, ...: how a range is written in messages and docs."""
    if math.isinf(high):
        if math.isinf(low):
            return "any finite number"
        return f"{'>' if low_open else '≥'} {format_number(low)}"
    return f"{'(' if low_open else '['}{format_number(low)}, {format_number(high)}{')' if high_open else ']'}"


def in_range(
    low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = False
) -> Validator:
    """Validator: a finite number in ``[low, high]`` (ends excluded with ``low_open``/``high_open``)."""
    text = interval_text(low, high, low_open=low_open, high_open=high_open)

    def check(_instance: Any, attribute: attrs.Attribute, value: float) -> None:
        ok = (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        )
        if not ok:
            raise ValueError(f"'{attribute.name}' must be {_as_phrase(text)}, got {value!r}")

    return _with_range(check, text)


def _as_phrase(text: str) -> str:
    return text if text[0] in "≥>ai" else f"in {text}"


#: Validator: any finite number (no NaN, no infinity).
finite = in_range(-math.inf)


def integer(low: int | None = None, high: int | None = None, *, text: str | None = None) -> Validator:
    """Validator: an integer (not a bool, not 2.5) in ``[low, high]``; ``text`` overrides how the range reads."""
    if text is not None:
        pass
    elif low is not None and high is not None:
        text = f"integer in [{low}, {high}]"
    elif low is not None:
        text = f"integer ≥ {low}"
    else:
        text = "integer"

    def check(_instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"'{attribute.name}' must be an integer, got {value!r} ({type(value).__name__})")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"'{attribute.name}' must be an {text}, got {value!r}")

    return _with_range(check, text)


#: the seeds torch accepts, as a recipe range
SEED_MAX = 2**63 - 1
valid_seed = integer(0, SEED_MAX, text="integer in [0, 2^63 - 1]")


def optional(validator: Validator) -> Validator:
    """Validator: None, or what ``validator`` accepts."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is not None:
            validator(instance, attribute, value)

    check.optional_of = validator  # type: ignore[attr-defined]  # the recipe reference describes it
    inner = getattr(validator, "description", None)
    return _with_range(check, f"{inner}, or none") if inner is not None else check


def each(validator: Validator, *, length: int | None = None, nonempty: bool = False) -> Validator:
    """Validator for a list (tuple) of numbers: every item passes ``validator``."""
    size = f"{length} numbers" if length else ("a non-empty list" if nonempty else "a list")
    text = f"{size}, each {_as_phrase(validator.description)}"  # type: ignore[attr-defined]

    def check(instance: Any, attribute: attrs.Attribute, values: Any) -> None:
        if length is not None and len(values) != length:
            raise ValueError(f"'{attribute.name}' must be {length} numbers, got {list(values)!r}")
        if nonempty and not values:
            raise ValueError(f"'{attribute.name}' needs at least one value")
        for item in values:
            try:
                validator(instance, attribute, item)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{exc} (in {list(values)!r})") from None

    return _with_range(check, text)


@describe("> 0, or none")
def positive_or_none(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    """attrs validator: None, or a finite number > 0."""
    if value is not None:
        _positive(instance, attribute, value)


_positive = in_range(0.0, low_open=True)


def one_of(*choices: str) -> Callable[[Any, Any, Any], None]:
    """Validator: the value is one of ``choices`` (with a suggestion when it is not)."""

    @describe(", ".join(f'"{c}"' if isinstance(c, str) else format_number(c) for c in choices))
    def check(_instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise ValueError(
                f"'{attribute.name}' must be one of {', '.join(map(repr, choices))}, got {value!r}."
                f"{did_you_mean(str(value), choices)}"
            )

    return check


@define(frozen=True)
class ScheduledValue:
    """A number that may change over training: a constant or a registered schedule."""

    kind: str
    params: Mapping[str, Any]
    schedule: Schedule = field(repr=False, eq=False)

    def __call__(self, progress: Progress) -> float:
        return self.schedule(progress)

    @property
    def is_constant(self) -> bool:
        return self.kind == "constant"

    def extremes(self) -> tuple[float, float]:
        """The lowest and highest values over any run (the schedule's ``extremes()``, else sampled)."""
        bounds = getattr(self.schedule, "extremes", None)
        if bounds is not None:
            return bounds()
        from advdistill.interfaces import Progress

        values = [self.schedule(Progress(e, epochs)) for epochs in (1, 2, 10, 100) for e in range(1, epochs + 1)]
        return min(values), max(values)

    def to_json(self) -> Any:
        if self.is_constant:
            return self.params["value"]
        return {"kind": self.kind, **self.params}

    @classmethod
    def from_value(cls, value: Any) -> ScheduledValue:
        """Accept a number / ``"8/255"`` string (constant) or a table ``{kind = ..., ...}``."""
        if isinstance(value, ScheduledValue):
            return value
        if isinstance(value, Mapping):
            kind, params = split_table(value, "schedule", "{kind = \"linear\", end = 20}")
        else:
            number = as_float(value)
            if not math.isfinite(number):
                raise ValueError(f"expected a finite number, got {number!r}")
            kind, params = "constant", {"value": number}
        schedule_cls, config = component_config("schedule", kind, params, where=f"schedule {kind!r}")
        return cls(kind, config_to_dict(config), schedule_cls(config))


def schedule_in_range(
    low: float = -math.inf, high: float = math.inf, *, high_open: bool = False
) -> Validator:
    """Validator for a :class:`ScheduledValue`: every value the schedule can take lies in ``[low, high]``."""
    inner = in_range(low, high, high_open=high_open)
    text = inner.description  # type: ignore[attr-defined]

    def check(_instance: Any, attribute: attrs.Attribute, value: ScheduledValue) -> None:
        lowest, highest = value.extremes()
        for extreme in (lowest, highest):
            try:
                inner(_instance, attribute, extreme)
            except ValueError:
                what = "" if value.is_constant else f" (the {value.kind} schedule reaches {extreme!r})"
                raise ValueError(
                    f"'{attribute.name}' must be {_as_phrase(text)}{what}, got {value.to_json()!r}"
                ) from None

    return _with_range(check, text)


def scheduled(
    default: Any, *, low: float = -math.inf, high: float = math.inf, high_open: bool = False, **kwargs: Any
) -> Any:
    """An attrs field holding a :class:`ScheduledValue` (a number or a schedule table) within ``[low, high]``."""
    return field(
        default=default, converter=ScheduledValue.from_value,
        validator=schedule_in_range(low, high, high_open=high_open), **kwargs,
    )


def config_fields(cls: type) -> dict[str, attrs.Attribute]:
    """The init fields of an attrs config class, by the name a recipe uses."""
    return {a.alias or a.name: a for a in attrs.fields(cls) if a.init}


def build_config(
    component: Any, params: Mapping[str, Any], *, where: str | Callable[[str | None], str]
) -> Any:
    """Instantiate ``component.Config`` (or the attrs class ``component``) from ``params``.

    :param where: where the parameters come from, e.g. ``"recipes/a.toml [attack]"``, or a
        function of the offending key (None for the table) returning such a location.
    """
    locate = where if callable(where) else (lambda _key: where)
    config_cls = component if attrs.has(component) else getattr(component, "Config", None)
    if config_cls is None:
        if params:
            raise RecipeError(
                f"{locate(None)}: this component takes no parameters, got {', '.join(params)}."
            )
        return None
    fields = config_fields(config_cls)
    for key in params:
        if key not in fields:
            valid = ", ".join(sorted(fields)) or "none"
            raise RecipeError(
                f"{locate(key)}: unknown key {key!r}.{did_you_mean(key, fields)} Valid keys: {valid}."
            )
    for key, value in params.items():  # converters run before validators and know no field name
        converter = fields[key].converter
        if converter is not None:
            try:
                converter(value)
            except RecipeError as exc:
                raise RecipeError(f"{locate(key)}: {exc}") from None
            except (TypeError, ValueError) as exc:
                raise RecipeError(f"{locate(key)}: invalid value for '{key}': {error_message(exc)}") from None
    where = locate(None)
    try:
        return config_cls(**params)
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None
    except TypeError as exc:
        message = error_message(exc)
        missing = [name for name, a in fields.items() if a.default is attrs.NOTHING and name not in params]
        if missing:
            message = f"missing required key(s): {', '.join(missing)}"
        raise RecipeError(f"{where}: {message}") from None
    except ValueError as exc:
        raise RecipeError(f"{where}: {error_message(exc)}") from None


def _type_names(expected: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a table",
             list: "a list", tuple: "a list"}
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(names.get(t, getattr(t, "__name__", str(t))) for t in types)


def error_message(exc: BaseException) -> str:
    """A one-line message for a validation error (attrs' own carry the attribute, type and value as args)."""
    args = exc.args
    if len(args) == 4 and isinstance(args[1], attrs.Attribute) and isinstance(args[2], (type, tuple)):
        # attrs.validators.instance_of: (message, attribute, expected type, value)
        value = args[3]
        return f"'{args[1].name}' must be {_type_names(args[2])}, got {value!r} ({type(value).__name__})"
    if len(args) > 1 and isinstance(args[0], str):  # other attrs validators: (message, attribute, ...)
        return args[0]
    return str(exc)


def split_table(value: Any, kind: str, example: str) -> tuple[str, dict[str, Any]]:
    """A component table ``{kind = "<name>", **params}`` → ``(name, params)``; the name must be registered.

    :param example: a valid table, shown in the error (e.g. ``'{kind = "checkpoint", path = "..."}'``).
    """
    from advdistill.plugins import get_registry

    registry = get_registry()
    if not isinstance(value, Mapping) or not isinstance(value.get("kind"), str):
        raise ValueError(
            f"expected a table naming a registered {kind}, such as {example}; got {value!r}. "
            f"A {kind} table needs kind = one of {', '.join(map(repr, registry.names(kind)))}."
        )
    params = dict(value)
    name = params.pop("kind")
    if (kind, name) not in registry:
        names = registry.names(kind)
        raise ValueError(
            f"unknown {kind} {name!r}.{did_you_mean(name, names)} Known {kind}s: {', '.join(names)}."
            f"{registry.failure_note()}"
        )
    return name, params


def component_config(
    kind: str, name: str, params: Mapping[str, Any], *, where: str | Callable[[str | None], str]
) -> tuple[Any, Any]:
    """The component registered as ``kind``/``name`` and its validated config (see :func:`build_config`).

    ``name`` may be ``"base:variant"``: ``base`` is looked up and ``variant`` joins the parameters.
    """
    from advdistill.plugins import get_registry

    component = get_registry().get(kind, name)
    return component, validated_config(kind, name, params, where=where)


def validated_config(
    kind: str, name: str, params: Mapping[str, Any], *, where: str | Callable[[str | None], str]
) -> Any:
    """The validated config of the component registered as ``kind``/``name`` (see :func:`build_config`).

    Only the config class is imported where the plugin declares it apart from the component, so
    that resolving a recipe does not import torch.
    """
    from advdistill.plugins import get_registry
    from advdistill.registry import with_variant

    config_cls = get_registry().get_config(kind, name)
    return build_config(config_cls, with_variant(name, params), where=where)


def component_table(kind: str, example: str) -> Callable[[Any], dict[str, Any] | None]:
    """attrs converter for a nested component table ``{kind = "...", ...}`` of ``kind`` (None passes).

    The table's ``kind`` is looked up in the registry and its parameters are validated by the
    component's config class, so a bad table fails when the recipe is loaded, naming the key;
    the plain dict is kept (the component is built where it is used, e.g. with
    :func:`advdistill.components.build_from_table`).
    """

    @describe(f"a {kind} table, e.g. {example}")
    def convert(value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        name, params = split_table(value, kind, example)
        validated_config(kind, name, params, where=f"{kind} {name!r}")
        return dict(value)

    return convert


def _json_value(value: Any) -> Any:
    if isinstance(value, ScheduledValue):
        return value.to_json()
    if attrs.has(type(value)):
        return config_to_dict(value)
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config instance (defaults included, schedules expanded)."""
    if config is None:
        return {}
    return {
        (a.alias or a.name): _json_value(getattr(config, a.name))
        for a in attrs.fields(type(config))
        if a.init
    }
