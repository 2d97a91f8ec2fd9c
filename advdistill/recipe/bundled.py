"""The recipes that ship with advdistill (the ``advdistill_recipes`` package), usable by name anywhere.

A bundled recipe's name is its path inside ``recipes/`` without ``.toml``, e.g.
``cifar10/resnet18/rslad+igdm`` or ``demo/teacher``. Wherever a recipe path is accepted, a name
that is not a file resolves to the installed copy (a file of that path wins), so the recipes
work from any directory and from an installed package: ``advdistill train cifar10/resnet18/rslad+igdm``.
Bases (``base/`` and ``*/base.toml``: pieces that other recipes extend) are not listed but resolve too.
Torch-free: ``advdistill recipe list`` starts fast.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from attrs import define

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PACKAGE = "advdistill_recipes"


@define(frozen=True)
class BundledRecipe:
    """One recipe of the installed package: its name, file and one-line summary."""

    name: str
    path: Path
    summary: str


def recipes_root() -> Path | None:
    """The directory of the installed ``advdistill_recipes`` package (None when it is not installed)."""
    try:
        root = resources.files(PACKAGE)
    except ModuleNotFoundError:
        return None
    path = Path(str(root))
    return path if path.is_dir() else None


def _name(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _is_base(name: str) -> bool:
    parts = name.split("/")
    return "base" in parts


def _summary(path: Path) -> str | None:
    """The recipe's description, else its first comment line; None when the file is not a recipe."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    from advdistill.recipe.schema import TOP_LEVEL_KEYS

    if "schema" not in data or not set(data) <= {*TOP_LEVEL_KEYS, "extends"}:
        return None  # leaves.toml, the paper's numbers: tables, not recipes
    if isinstance(data.get("description"), str) and data["description"]:
        return data["description"]
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def list_bundled(*, bases: bool = False) -> list[BundledRecipe]:
    """The bundled recipes, sorted by name; ``bases``: include the pieces other recipes extend."""
    root = recipes_root()
    if root is None:
        return []
    found = []
    for path in sorted(root.rglob("*.toml")):
        name = _name(path, root)
        if _is_base(name) and not bases:
            continue
        summary = _summary(path)
        if summary is not None:
            found.append(BundledRecipe(name, path, summary))
    return found


def bundled_name(text: str) -> str:
    """``text`` as a bundled recipe name: without a leading ``recipes/`` and a trailing ``.toml``."""
    name = text.replace("\\", "/").strip()
    name = name.removeprefix("./").removeprefix("recipes/")
    return name.removesuffix(".toml")


def find_bundled(text: str) -> Path | None:
    """The installed file of the bundled recipe ``text`` names (a name or a ``recipes/...`` path), or None."""
    root = recipes_root()
    if root is None:
        return None
    name = bundled_name(text)
    if not name or name.startswith("/") or ".." in name.split("/"):
        return None
    path = root / f"{name}.toml"
    return path if path.is_file() else None


def resolve_recipe_path(path: str | Path) -> Path:
    """``path`` when it exists, else the bundled recipe it names, else ``path`` (its reader reports it missing)."""
    path = Path(path)
    if path.exists():
        return path
    return find_bundled(str(path)) or path


def closest_bundled(text: str, n: int = 3) -> list[str]:
    """Bundled recipe names that look like ``text`` (for "not found" messages)."""
    from advdistill.errors import closest

    name = bundled_name(text)
    names = [r.name for r in list_bundled()]
    found = closest(name, names, n=n)
    if not found:  # the same leaf under another data set or student
        leaf = name.rsplit("/", 1)[-1]
        found = [candidate for candidate in names if candidate.rsplit("/", 1)[-1] == leaf][:n]
    return found
