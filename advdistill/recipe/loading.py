"""Reading recipe files: TOML (or a resolved recipe.json), ``extends`` chains, ``--set`` overrides.

Every leaf value remembers where it came from (a file, or the ``--set`` that set it) so that
errors can point at the right place in a chain of ``extends``.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from advdistill.errors import RecipeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Keys of a recipe.json that describe the file rather than the recipe.
META_KEYS = ("recipe_hash", "advdistill_version", "history")

Provenance = dict[tuple[str, ...], str]


def damaged(path: Path, problem: str) -> RecipeError:
    """The error for an unreadable recipe file; a run's ``recipe.json`` also gets the way out."""
    message = f"{path}: {problem}"
    if path.name == "recipe.json":
        run = path.parent
        message += (
            f". This is the resolved recipe of the run {run}, and it is damaged (an interrupted write, or an "
            "edit). Use the recipe the run was made from instead: "
            f"`advdistill train ORIGINAL.toml --out {run} --resume` (the checkpoint records the recipe's hash, "
            "so a different recipe is refused; the resume rewrites recipe.json) or "
            f"`advdistill eval {run} --recipe ORIGINAL.toml`."
        )
    return RecipeError(message)


def _decode(path: Path, raw: bytes) -> str:
    """The file's text; recipes are UTF-8 (TOML requires it)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        where = f"byte {raw[exc.start]:#04x} at line {line}, column {column}"
        if b"\x00" in raw[:8192] or _looks_binary(raw[:8192]):
            raise damaged(path, f"not a text file (binary data; the first invalid {where})") from None
        raise damaged(
            path,
            f"not UTF-8 text ({where}; saved as Latin-1 or another 8-bit encoding?). Recipes must be UTF-8: "
            f"re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path} > fixed.toml`",
        ) from None


def _looks_binary(head: bytes) -> bool:
    # text in any 8-bit encoding is mostly printable ASCII; random bytes are not
    printable = sum(1 for b in head if 32 <= b < 127 or b in (9, 10, 13))
    return printable < 0.7 * len(head)


def read_file(path: Path) -> dict[str, Any]:
    """Parse one TOML or JSON recipe file (no ``extends`` processing)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecipeError(f"Recipe file not found: {path}") from None
    except IsADirectoryError:
        raise RecipeError(f"{path} is a directory, not a recipe file") from None
    except OSError as exc:
        raise RecipeError(f"Cannot read recipe {path}: {exc.strerror or exc}") from None
    text = _decode(path, raw)
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise damaged(path, f"invalid JSON: {exc}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise damaged(path, f"invalid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise damaged(path, f"a recipe must be a table at the top level, not {type(data).__name__}")
    for key in META_KEYS if path.suffix == ".json" else ():
        data.pop(key, None)
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into ``base``: tables merge recursively, everything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _leaves(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    for key, value in data.items():
        path = (*prefix, key)
        yield path
        if isinstance(value, Mapping):
            yield from _leaves(value, path)


def load_chain(path: Path, _seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Provenance]:
    """Read ``path`` and everything it ``extends`` (depth first), merged; with provenance."""
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise RecipeError(f"Recipe 'extends' forms a cycle: {chain}")
    data = read_file(path)
    parents = data.pop("extends", None)
    merged: dict[str, Any] = {}
    provenance: Provenance = {}
    if parents is not None:
        if isinstance(parents, str):
            parents = [parents]
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            raise RecipeError(f"{path}: 'extends' must be a path or a list of paths (relative to this file)")
        for parent in parents:
            parent_path = (path.parent / parent).resolve()
            if not parent_path.exists():
                raise RecipeError(f"{path}: extends {parent!r}, but {parent_path} does not exist")
            parent_data, parent_prov = load_chain(parent_path, (*_seen, path))
            merged = deep_merge(merged, parent_data)
            provenance.update(parent_prov)
    merged = deep_merge(merged, data)
    for leaf in _leaves(data):
        provenance[leaf] = str(path)
    return merged, provenance


def parse_override(text: str) -> tuple[tuple[str, ...], Any]:
    """Parse ``a.b.c=value``; the value uses TOML syntax, bare words are taken as strings."""
    key, eq, raw = text.partition("=")
    key = key.strip()
    if not eq or not key:
        raise RecipeError(f"--set {text!r}: expected KEY=VALUE, e.g. --set optim.lr=0.05")
    parts = tuple(part.strip() for part in key.split("."))
    if not all(parts):
        raise RecipeError(f"--set {text!r}: empty component in key {key!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if raw.startswith(("[", "{", '"', "'")):
            raise RecipeError(f"--set {text!r}: cannot parse {raw!r} as a TOML value") from None
        value = raw  # a bare word such as pgd or 8/255
    return parts, value


def apply_overrides(
    data: dict[str, Any], provenance: Provenance, overrides: Iterable[str]
) -> dict[str, Any]:
    """Apply ``--set`` overrides; each replaces the value at its path (tables are not merged)."""
    data = copy.deepcopy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise RecipeError(f"--set {text!r}: {where!r} is a value, not a table")
            node = child
        node[parts[-1]] = value
        provenance[parts] = f"--set {text}"
        if isinstance(value, Mapping):
            for leaf in _leaves(value, parts):
                provenance[leaf] = f"--set {text}"
    return data
