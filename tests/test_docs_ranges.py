"""docs/recipes.md lists the range of every numeric recipe key; this keeps it in sync with the validators.

Regenerate the section with ``python tests/test_docs_ranges.py`` and paste it between the markers.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

DOC = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"
START, END = "<!-- ranges:start -->", "<!-- ranges:end -->"
NUMERIC = re.compile(r"\b(int|float|ScheduledValue)\b")


def ranges_markdown() -> str:
    from advdistill.config import describe_range
    from advdistill.plugins import get_registry
    from advdistill.recipe.schema import EvalConfig, OptimConfig, TrainConfig

    def rows(config):
        return [(a.name, describe_range(a)) for a in attrs.fields(config) if a.init and NUMERIC.search(str(a.type))]

    lines = ["| key | range |", "|---|---|"]
    for table, config in (("train", TrainConfig), ("optim", OptimConfig), ("eval", EvalConfig)):
        lines += [f"| `{table}.{name}` | {text} |" for name, text in rows(config)]
    lines += ["", "| component | key | range |", "|---|---|---|"]
    registry = get_registry()
    for info in registry.infos():
        if info.alias_of is not None or info.kind == "command" or info.package != "advdistill":
            continue
        component = registry.get(info.kind, info.name)
        config = component if attrs.has(component) else getattr(component, "Config", None)
        if config is not None:
            lines += [f"| {info.kind} `{info.name}` | `{name}` | {text} |" for name, text in rows(config)]
    return "\n".join(lines)


def test_docs_list_every_numeric_key_with_its_range():
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text, f"{DOC} lacks the ranges section markers"
    section = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert section == ranges_markdown(), f"{DOC}: the ranges section is out of date; regenerate it with " \
                                         f"`python {Path(__file__).relative_to(DOC.parents[1])}`"


if __name__ == "__main__":
    print(ranges_markdown())
