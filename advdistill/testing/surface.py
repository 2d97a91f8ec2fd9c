"""The modules a plugin may import, and a check that a package imports nothing else of advdistill."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

#: The modules a plugin may import; the project keeps their public names stable (docs/plugins.md).
#: Anything else in ``advdistill`` (the engine, the evaluation runner, recipe loading, the CLI) and
#: in ``advdistill_plugins`` may change in any release.
PLUGIN_SURFACE: tuple[str, ...] = (
    "advdistill",
    "advdistill.components",
    "advdistill.config",
    "advdistill.context",
    "advdistill.errors",
    "advdistill.evaluation.context",
    "advdistill.interfaces",
    "advdistill.io",
    "advdistill.losses",
    "advdistill.progress",
    "advdistill.testing",
    "advdistill.torch_utils",
    "advdistill_plugins.attacks.base",
)
#: The packages whose modules :data:`PLUGIN_SURFACE` restricts.
SURFACE_PACKAGES = ("advdistill", "advdistill_plugins")


def _imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import; ``from pkg import name`` is ``pkg.name`` when that is a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                ours = node.module.split(".")[0] in SURFACE_PACKAGES
                yield node.lineno, name if ours and _is_module(name) else node.module


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def surface_violations(path: str | Path, surface: tuple[str, ...] = PLUGIN_SURFACE) -> list[str]:
    """Imports of advdistill modules outside ``surface`` in the Python files under ``path``.

    Every import counts (module level, inside functions, under ``TYPE_CHECKING``). Returns
    ``"file:line: module"`` strings; an empty list means the plugin uses only the surface.
    """
    root = Path(path)
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    found: dict[str, None] = {}
    for file in files:
        for line, module in _imported_modules(ast.parse(file.read_text(encoding="utf-8"))):
            if module.split(".")[0] in SURFACE_PACKAGES and module not in surface:
                found[f"{file}:{line}: {module}"] = None
    return list(found)
