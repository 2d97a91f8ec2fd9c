"""The recipe reference, generated from the config classes: every key's type, default, allowed values and meaning.

``advdistill recipe keys [KIND [NAME]]`` prints it; docs/recipes.md holds the Markdown form
between ``BEGIN GENERATED`` / ``END GENERATED`` markers (``python -m advdistill.recipe.reference
docs/recipes.md`` rewrites them), and a test fails when they are stale. Nothing here is written
by hand per key:

- the **meaning** is the ``#:`` comment above the attrs field (or after it on the same line), read
  from the config class's source, following the MRO for inherited fields;
- the **default** is the field's default (``required`` when it has none; a schedule default as its
  table; a factory default by its value, or by the ``description`` of the factory function);
- the **allowed** values come from the validators: attrs' own are described from their attributes,
  ours (:func:`advdistill.config.in_range`, :func:`~advdistill.config.one_of`, ...) carry a
  ``description`` (:func:`advdistill.config.describe`).
"""

from __future__ import annotations

import ast
import functools
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import define

from advdistill.config import ScheduledValue, config_fields, format_number

#: The core tables: recipe section -> attrs class (import path, read lazily).
CORE_TABLES = {
    "data": "ValSplit", "optim": "OptimConfig", "train": "TrainConfig", "eval": "EvalConfig",
    "eval.checks": "ChecksConfig",
}
#: Component kinds a recipe table can name (``command`` components have no table).
TABLE_KINDS = (
    "dataset", "model", "teacher", "attack", "objective", "aux", "schedule", "metric", "callback", "step_extension",
)
#: Where each kind appears in a recipe.
KIND_SECTIONS = {
    "dataset": "[data]",
    "model": "[student], a teacher's model = {...}",
    "teacher": "[teacher]",
    "attack": "[attack]",
    "objective": "[objective]",
    "aux": "[aux.<label>]",
    "schedule": "any scheduled number: lr = {kind = ...}",
    "metric": "[eval.metrics.<label>]",
    "callback": "[callbacks.<label>]",
    "step_extension": "[step_extensions.<label>]",
}
UNDESCRIBED = "(not described)"


@define(frozen=True)
class KeyDoc:
    """One recipe key of a table."""

    key: str
    type: str
    default: str
    allowed: str
    meaning: str


@define(frozen=True)
class TableDoc:
    """The keys of one core table or one component."""

    #: "[train]", or the component's kind and name
    title: str
    summary: str
    keys: tuple[KeyDoc, ...]
    #: e.g. the package that registers the component
    note: str = ""


# -- field meanings: the #: comments ---------------------------------------------------------------

@functools.cache
def _class_comments(cls: type) -> dict[str, str]:
    """``#:`` comments of the fields defined in ``cls``'s own body, by field name."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}  # line -> text of a "#:" comment
    code_lines: set[int] = set()  # lines holding code (a "#:" there is a trailing comment)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and token.string.startswith("#:"):
            comments[token.start[0]] = token.string[2:].strip()
        elif token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                tokenize.DEDENT, tokenize.ENDMARKER):
            code_lines.add(token.start[0])
    tree = ast.parse(source)
    class_node = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    found: dict[str, str] = {}
    for statement in class_node.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
        elif (isinstance(statement, ast.Assign) and len(statement.targets) == 1
              and isinstance(statement.targets[0], ast.Name)):
            name = statement.targets[0].id
        else:
            continue
        above, line = [], statement.lineno - 1
        while line in comments and line not in code_lines:
            above.insert(0, comments[line])
            line -= 1
        trailing = comments.get(statement.lineno) if statement.lineno in code_lines else None
        text = " ".join([*above, *([trailing] if trailing else [])])
        if text:
            found[name] = text
    return found


def field_meanings(cls: type) -> dict[str, str]:
    """The ``#:`` comment of each field of ``cls``, inherited ones from the class that defines them.

    A subclass that redefines a field without a comment keeps its base class's comment.
    """
    meanings: dict[str, str] = {}
    for klass in cls.__mro__:
        if klass is object:
            continue
        for name, text in _class_comments(klass).items():
            meanings.setdefault(name, text)
    return meanings


# -- validators, types and defaults ----------------------------------------------------------------

def _comparison(op: str) -> str:
    return {">=": "≥", ">": ">", "<=": "≤", "<": "<"}.get(op, op)


def describe_validator(validator: Any) -> str | None:
    """What ``validator`` accepts, as a short phrase; None when it cannot describe itself.

    ``""`` means "nothing to add" (``instance_of``: the type column already says it).
    """
    own = getattr(validator, "description", None)
    if isinstance(own, str):
        return own
    inner = getattr(validator, "optional_of", None)  # advdistill.config.optional around an undescribed one
    if inner is not None:
        return describe_validator(inner)
    kind = type(validator).__name__
    if kind == "_InstanceOfValidator":
        return ""
    if kind == "_InValidator":
        options = getattr(validator, "_original_options", None) or validator.options
        return ", ".join(_toml(option) for option in options)
    if kind == "_NumberValidator":
        return f"{_comparison(validator.compare_op)} {format_number(validator.bound)}"
    if kind == "_OptionalValidator":
        return describe_validator(validator.validator)
    if kind == "_AndValidator":
        parts = [describe_validator(v) for v in validator._validators]
        return None if None in parts else ", ".join(p for p in parts if p)
    if kind == "_OrValidator":
        parts = [describe_validator(v) for v in validator.validators]
        return None if None in parts else " or ".join(p or "any" for p in parts)
    if kind == "_DeepIterable":
        member = describe_validator(validator.member_validator)
        outer = describe_validator(validator.iterable_validator) if validator.iterable_validator else ""
        if member is None or outer is None:
            return None
        return ", ".join(p for p in (outer, f"each item {member}" if member else "") if p)
    if kind == "_DeepMapping":
        parts = [describe_validator(v) for v in (validator.key_validator, validator.value_validator)]
        return None if None in parts else "a table" + "".join(
            f", {label} {p}" for label, p in zip(("keys", "values"), parts) if p
        )
    if kind == "_MinLengthValidator":
        return f"length ≥ {validator.min_length}"
    if kind == "_MaxLengthValidator":
        return f"length ≤ {validator.max_length}"
    if kind == "_MatchesReValidator":
        return f"matches {validator.pattern.pattern!r}"
    if kind == "_IsCallableValidator":
        return "callable"
    return None


def _validators(attribute: attrs.Attribute) -> list[Any]:
    validator = attribute.validator
    if validator is None:
        return []
    if type(validator).__name__ == "_AndValidator":
        return list(validator._validators)
    return [validator]


def describe_allowed(attribute: attrs.Attribute) -> str:
    """The allowed values of a field: its converter's and validators' descriptions."""
    parts = []
    converter_text = getattr(attribute.converter, "description", None)
    if isinstance(converter_text, str):
        parts.append(converter_text)
    for validator in _validators(attribute):
        text = describe_validator(validator)
        parts.append(UNDESCRIBED if text is None else text)
    return "; ".join(p for p in parts if p)


_TYPE_WORDS = {
    "float": "float", "int": "int", "str": "str", "bool": "bool", "None": "none", "Any": "any",
    "ScheduledValue": "float or schedule", "Path": "path",
}


def describe_type(attribute: attrs.Attribute) -> str:
    """The field's type in recipe words (``float``, ``list of int``, ``float or schedule``, ``table``)."""
    annotation = attribute.type
    if annotation is None:
        return ""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    words = []
    for part in _split_union(text):
        part = part.strip()
        match = re.fullmatch(r"(?:tuple|list|Sequence)\[(\w+)(?:, \.\.\.)?\]", part)
        if match:
            words.append(f"list of {_TYPE_WORDS.get(match.group(1), match.group(1))}")
        elif re.fullmatch(r"(?:dict|Mapping)\[.*\]", part):
            words.append("table")
        else:
            words.append(_TYPE_WORDS.get(part, part))
    return " or ".join(dict.fromkeys(words))


def _split_union(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _toml(value: Any) -> str:
    """``value`` as it is written in a recipe."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, ScheduledValue):
        return _toml(value.to_json())
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def describe_default(attribute: attrs.Attribute) -> str:
    """The default as written in a recipe; ``required`` when the key must be given."""
    described = attribute.metadata.get("reference_default")
    if described is not None:
        return described
    default = attribute.default
    if default is attrs.NOTHING:
        return "required"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        own = getattr(default.factory, "description", None)
        if isinstance(own, str):
            return own
        if default.takes_self:
            return "computed"
        return _toml(default.factory())
    return _toml(default)


# -- tables ----------------------------------------------------------------------------------------

def _plain(text: str) -> str:
    """reStructuredText's ``code`` as Markdown's `code` (docstrings and comments use the former)."""
    return text.replace("``", "`")


def keys_of(config_cls: type | None, *, skip: Iterable[str] = ()) -> tuple[KeyDoc, ...]:
    """One :class:`KeyDoc` per recipe key of an attrs config class (None: no keys)."""
    if config_cls is None:
        return ()
    meanings = field_meanings(config_cls)
    skipped = set(skip)
    return tuple(
        KeyDoc(
            key=key,
            type=describe_type(attribute),
            default=describe_default(attribute),
            allowed=describe_allowed(attribute),
            meaning=_plain(meanings.get(attribute.name, "")),
        )
        for key, attribute in config_fields(config_cls).items()
        if key not in skipped
    )


def core_table(section: str) -> TableDoc:
    """The keys of a core table: ``optim``, ``train`` or ``eval``, or the core's keys of ``[data]``."""
    from advdistill.recipe import schema

    cls = getattr(schema, CORE_TABLES[section])
    summary = (inspect.getdoc(cls) or "").splitlines()[0]
    summary = summary.removeprefix(f"``[{section}]``: ")
    return TableDoc(f"[{section}]", _plain(summary), keys_of(cls))


def component_table(kind: str, name: str) -> TableDoc:
    """The keys of the component registered as ``kind``/``name``."""
    from advdistill.plugins import get_registry

    registry = get_registry()
    spec = registry.spec(kind, name)
    info = spec.info()
    config_cls = spec.load_config()  # a declared config: the component itself (and torch) is not imported
    note = f"registered by {info.package or info.plugin}"
    if info.alias_of:
        note += f"; alias of `{info.alias_of}`"
    # a "base:variant" component receives the variant as a key, set through kind = "base:<variant>"
    return TableDoc(f"{kind} `{name}`", _plain(info.summary), keys_of(config_cls), note)


def component_names(kind: str, *, package: str | None = None) -> list[str]:
    """Registered names of ``kind`` (aliases left out), optionally only those of one distribution."""
    from advdistill.plugins import get_registry

    registry = get_registry()
    names = []
    for name in registry.names(kind):
        spec = registry.spec(kind, name)
        if spec.alias_of is None and (package is None or spec.package == package):
            names.append(name)
    return names


def tables(kind: str | None = None, name: str | None = None, *, package: str | None = None) -> list[TableDoc]:
    """What ``advdistill recipe keys [KIND [NAME]]`` prints: core tables and/or components."""
    if kind is None:
        out = [core_table(section) for section in CORE_TABLES]
        for each in TABLE_KINDS:
            out += [component_table(each, n) for n in component_names(each, package=package)]
        return out
    if kind in CORE_TABLES:
        return [core_table(kind)]
    if name is not None:
        return [component_table(kind, name)]
    return [component_table(kind, n) for n in component_names(kind, package=package)]


# -- rendering -------------------------------------------------------------------------------------

COLUMNS = ("key", "type", "default", "allowed", "meaning")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """A default in code style, unless it is a word (``required``, ``none``) or already has code in it."""
    return f"`{text}`" if text and text not in ("required", "computed", "none") and "`" not in text else text


def markdown_table(table: TableDoc) -> str:
    """One table as Markdown (no heading)."""
    if not table.keys:
        return "No keys besides `kind`.\n"
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for key in table.keys:
        cells = (f"`{key.key}`", key.type, _code(key.default), key.allowed, key.meaning)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(kind: str | None = None, name: str | None = None, *, package: str | None = None) -> str:
    """The reference as Markdown: a heading per kind, a heading and a table per component."""
    out: list[str] = []
    docs = tables(kind, name, package=package)
    current = None
    for table in docs:
        group = "core" if table.title.startswith("[") else table.title.split(" ")[0]
        if group != current and (kind is None or (kind not in CORE_TABLES and name is None)):
            current = group
            if group == "core":
                out.append("### Core tables\n")
            else:
                out.append(f"### {group} components ({KIND_SECTIONS[group]})\n")
        title = f"`{table.title}`" if table.title.startswith("[") else table.title
        out.append(f"#### {title}\n")
        described = " — ".join(p for p in (table.summary, f"*{table.note}*" if table.note else "") if p)
        if described:
            out.append(f"{described}\n")
        out.append(markdown_table(table))
    return "\n".join(out)


def text(kind: str | None = None, name: str | None = None, *, package: str | None = None,
         width: int = 100) -> str:
    """The reference as plain text for a terminal: aligned key, type, default and allowed values,
    each key's meaning wrapped on the lines below it."""
    blocks = []
    for table in tables(kind, name, package=package):
        head = f"{table.title}: {table.summary}" if table.summary else table.title
        if table.note:
            head += f" ({table.note})"
        lines = textwrap.wrap(head, width, subsequent_indent="    ") or [head]
        if not table.keys:
            blocks.append("\n".join([*lines, "  no keys besides kind"]) + "\n")
            continue
        rows = [tuple(c.upper() for c in COLUMNS[:4])] + [(k.key, k.type, k.default, k.allowed) for k in table.keys]
        widths = [max(len(r[c]) for r in rows) for c in range(3)]
        meanings = ["", *(k.meaning for k in table.keys)]
        for row, meaning in zip(rows, meanings):
            lines.append(("  " + "".join(cell.ljust(w + 2) for cell, w in zip(row[:3], widths)) + row[3]).rstrip())
            lines += textwrap.wrap(meaning, width, initial_indent="      ", subsequent_indent="      ")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


# -- docs/recipes.md -------------------------------------------------------------------------------

#: The command whose Markdown output docs/recipes.md holds between the markers.
DOCS_COMMAND = "advdistill recipe keys --markdown --package advdistill"
BEGIN = f"<!-- BEGIN GENERATED by `{DOCS_COMMAND}`: edit the config classes, not this block -->"
END = "<!-- END GENERATED -->"
DOCS_PACKAGE = "advdistill"


def docs_block() -> str:
    """What docs/recipes.md holds between the markers."""
    return markdown(package=DOCS_PACKAGE)


def replace_block(document: str, block: str) -> str:
    """``document`` with the text between its markers replaced by ``block``."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the document has no {BEGIN!r} ... {END!r} markers")
    return document[: start + len(BEGIN)] + "\n\n" + block.rstrip("\n") + "\n\n" + document[end:]


def main(argv: list[str] | None = None) -> int:
    """``python -m advdistill.recipe.reference FILE...``: rewrite the generated block of each file."""
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)] or [Path("docs/recipes.md")]
    block = docs_block()
    for path in paths:
        old = path.read_text(encoding="utf-8")
        new = replace_block(old, block)
        if new != old:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path}")
        else:
            print(f"{path} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
