"""Writing TOML: a value as the right-hand side of a ``--set`` override, a recipe dict as a file.

The inverse of what :mod:`advdistill.recipe.loading` reads (``tomllib`` has no writer): the study
runner writes sweep values as overrides with it, tests and fixtures write recipes with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_value(value: Any) -> str:
    """``value`` (bool, int, float, str, list, table) in TOML syntax, e.g. the VALUE of ``--set KEY=VALUE``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a TOML value")


def toml_key(key: str) -> str:
    """A table key: bare when TOML allows it, else quoted."""
    return key if BARE_KEY.fullmatch(key) else toml_value(key)


def to_toml(data: Mapping[str, Any]) -> str:
    """A recipe dict as TOML text: top-level values first, then one ``[table]`` per top-level table
    (tables nested deeper are written inline)."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, Mapping)]
    for key, value in data.items():
        if isinstance(value, Mapping):
            lines += ["", f"[{toml_key(key)}]"] + [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"
