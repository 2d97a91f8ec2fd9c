"""How reports print a number: accuracies (percent) with two decimals, integer counts as they are,
every other value (GD, GC, distances, ratios) with three decimals, or three significant digits
when it is small."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: report keys that are accuracies in percent, for reports that do not say (written before
#: ``metric_info``): clean, PGD, AutoAttack and transfer accuracies
_ACCURACY_KEY = re.compile(r"^(clean|pgd\d*|pgd_l[12]|autoattack(_l[12])?|transfer_.+|square)$")


def is_accuracy(key: str, info: Mapping[str, Any] | None = None) -> bool:
    """Whether report key ``key`` is an accuracy in percent: its ``metric_info`` entry says so
    (``"unit": "%"``), else the key is one of the built-in accuracies."""
    if info is not None and key in info and "unit" in info[key]:
        return info[key]["unit"] == "%"
    return bool(_ACCURACY_KEY.match(key))


def format_accuracy(value: float) -> str:
    """``0.50``, ``63.00``: percent with two decimals, whatever the size."""
    return f"{value:.2f}"


def format_number(value: float) -> str:
    """A value that is not a percentage: ``0.612``, ``2.345``; small ones ``0.00123``, ``1.2e-05``."""
    if value == 0 or 0.1 <= abs(value) < 1e4:
        return f"{value:.3f}"
    return f"{value:.3g}"


def format_metric(key: str, value: Any, info: Mapping[str, Any] | None = None) -> str:
    """``value`` of report key ``key`` as the reports print it ("–" for None)."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if is_accuracy(key, info):
        return format_accuracy(value)
    return str(value) if isinstance(value, int) else format_number(value)  # a count (e.g. autoattack_n)
