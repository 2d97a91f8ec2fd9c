"""The study file (TOML): what to run — cells × seeds, shared setup runs, pairs, a sweep.

docs/studies.md documents every key. Loading validates the whole file (unknown keys name
the file, the table and the closest valid keys) and expands the sweep into cells; the runs
themselves are planned by :func:`advdistill.study.runner.plan`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from attrs import define

from advdistill.errors import StudyError, did_you_mean
from advdistill.recipe.toml_writer import toml_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

STUDY_SCHEMA = 1
TOP_LEVEL_KEYS = ("schema", "name", "description", "out", "seeds", "set", "metrics", "pairs", "setup", "cells", "sweep")
CELL_KEYS = ("recipe", "set")
SETUP_KEYS = ("recipe", "set", "seed")
SWEEP_KEYS = ("cell", "key", "values", "name", "labels")
#: the report keys tabulated when the study names none (those that no run reports are left out)
DEFAULT_METRICS = ("clean", "pgd20", "autoattack", "gd", "gc")
#: setup runs live in <study dir>/setup/<name>/, so no cell may be called that
SETUP_FOLDER = "setup"
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=@-]*$")
SETUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
PLACEHOLDER = re.compile(r"\{runs\.([^{}]*)\}")


@define(frozen=True)
class SetupRun:
    """A run trained once and shared by the cells (e.g. the teacher): ``{runs.<name>}`` in overrides."""

    name: str
    recipe: Path
    overrides: tuple[str, ...]
    seed: int | None


@define(frozen=True)
class Cell:
    """One recipe with its overrides, trained once per seed; ``sweep_value`` is set for sweep cells."""

    label: str
    recipe: Path
    overrides: tuple[str, ...]
    sweep_value: Any = None


@define(frozen=True)
class Sweep:
    """One parameter (``key``) over ``values`` on the cell ``cell``, expanded into the cells ``labels``."""

    cell: str
    key: str
    name: str
    values: tuple[Any, ...]
    labels: tuple[str, ...]


@define(frozen=True)
class Study:
    """A validated study file: shared overrides (``overrides``) come before each cell's own."""

    path: Path
    name: str
    description: str
    out: Path
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]
    metrics: tuple[str, ...] | None
    pairs: tuple[tuple[str, str], ...]
    setup: dict[str, SetupRun]
    cells: dict[str, Cell]
    sweep: Sweep | None


# -- tables in --set syntax ----------------------------------------------------------------------

def _flatten(table: Mapping[str, Any], prefix: str = "") -> list[str]:
    # nested tables become dotted keys: `teacher.path = "x"` sets that one key, leaving its siblings
    out = []
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out += _flatten(value, dotted + ".")
        else:
            out.append(f"{dotted}={toml_value(value)}")
    return out


# -- loading --------------------------------------------------------------------------------------

class _Reader:
    """Validation helpers that name the file and the table at fault."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, where: str, message: str) -> StudyError:
        return StudyError(f"{self.path}{f' [{where}]' if where else ''}: {message}")

    def keys(self, table: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
        for key in table:
            if key not in valid:
                raise self.error(
                    where, f"unknown key {key!r}.{did_you_mean(key, valid)} Valid keys: {', '.join(valid)}."
                )

    def table(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(where, f"expected a table, got {value!r}")
        return value

    def overrides(self, value: Any, where: str) -> tuple[str, ...]:
        """``set``: a list of ``KEY=VALUE`` strings (--set syntax) or a table (dotted keys)."""
        if value is None:
            return ()
        if isinstance(value, Mapping):
            found = _flatten(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            found = list(value)
        else:
            raise self.error(where, f"'set' must be a list of \"KEY=VALUE\" strings or a table, got {value!r}")
        for text in found:
            key = text.partition("=")[0].strip()
            if "=" not in text or not key:
                raise self.error(where, f"'set' entry {text!r} is not KEY=VALUE (e.g. \"optim.lr=0.05\")")
            if key == "train.seed":
                raise self.error(where, "'set' may not change train.seed: the study sets it from 'seeds'")
        return tuple(found)

    def recipe(self, value: Any, where: str) -> Path:
        if not isinstance(value, str) or not value:
            raise self.error(where, f"'recipe' must be a path (relative to the study file) or a bundled recipe "
                                    f"name such as \"demo/rslad\", got {value!r}")
        return resolve_recipe(value, self.path.parent, lambda msg: self.error(where, msg))


def resolve_recipe(text: str, base: Path, error: Any = StudyError) -> Path:
    """A recipe path: relative to ``base`` (the study file's folder), else a bundled recipe by name."""
    names = [text] if text.endswith((".toml", ".json")) else [text, f"{text}.toml"]
    tried = []
    for name in names:
        candidate = (base / name).expanduser()
        tried.append(str(candidate))
        if candidate.is_file():
            return candidate
    bundled = Path(str(files("advdistill_recipes")))
    for name in names:
        candidate = bundled / name
        tried.append(f"bundled {name}")
        if candidate.is_file():
            return candidate
    raise error(f"recipe {text!r} not found (tried {', '.join(tried)})")


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; raises :class:`StudyError` naming the file and key at fault."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(f"Study file not found: {path}") from None
    except OSError as exc:
        raise StudyError(f"Cannot read study file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: invalid TOML: {exc}") from None
    read = _Reader(path)
    read.keys(data, TOP_LEVEL_KEYS, "")
    if data.get("schema") != STUDY_SCHEMA:
        raise read.error("", f"expected schema = {STUDY_SCHEMA} at the top of the study file, "
                             f"got {data.get('schema')!r}")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not LABEL.match(name):
        raise read.error("", f"'name' must be a simple name (letters, digits, _.+=@-), got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise read.error("", "'description' must be a string")
    out = data.get("out", f"runs/studies/{name}")
    if not isinstance(out, str):
        raise read.error("", f"'out' must be a directory path, got {out!r}")
    seeds = data.get("seeds")
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise read.error("", f"'seeds' must be a non-empty list of integers, e.g. seeds = [0, 1, 2]; got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise read.error("", f"'seeds' lists a seed twice: {seeds}")
    metrics = data.get("metrics")
    if metrics is not None and (not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics)):
        raise read.error("", f"'metrics' must be a list of report keys such as [\"pgd20\", \"gd\"], got {metrics!r}")

    setup = _setup_runs(read, data.get("setup", {}))
    cells = _cells(read, data.get("cells"))
    sweep = _sweep(read, data.get("sweep"), cells) if "sweep" in data else None
    if sweep is not None:
        cells = _expand_sweep(cells, sweep)
    study = Study(
        path=path, name=name, description=description, out=Path(out).expanduser(), seeds=tuple(seeds),
        overrides=read.overrides(data.get("set"), "set"), metrics=tuple(metrics) if metrics is not None else None,
        pairs=_pairs(read, data.get("pairs", []), cells), setup=setup, cells=cells, sweep=sweep,
    )
    _check_placeholders(read, study)
    return study


def _setup_runs(read: _Reader, raw: Any) -> dict[str, SetupRun]:
    setup = {}
    for name, table in read.table(raw, "setup").items():
        where = f"setup.{name}"
        if not SETUP_NAME.match(name):
            raise read.error(where, "a setup name may hold letters, digits, _ and - only (it appears in {runs.NAME})")
        table = read.table(table, where)
        read.keys(table, SETUP_KEYS, where)
        seed = table.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise read.error(where, f"'seed' must be an integer, got {seed!r}")
        setup[name] = SetupRun(name, read.recipe(table.get("recipe"), where), read.overrides(table.get("set"), where),
                               seed)
    return setup


def _cells(read: _Reader, raw: Any) -> dict[str, Cell]:
    if not raw:
        raise read.error("", "a study needs at least one cell: [cells.<label>] with recipe = \"...\"")
    cells = {}
    for label, table in read.table(raw, "cells").items():
        where = f"cells.{label}"
        if not LABEL.match(label) or label == SETUP_FOLDER:
            raise read.error(where, f"a cell label becomes a directory name: letters, digits and _.+=@- only, "
                                    f"not {SETUP_FOLDER!r}; got {label!r}")
        table = read.table(table, where)
        read.keys(table, CELL_KEYS, where)
        cells[label] = Cell(label, read.recipe(table.get("recipe"), where), read.overrides(table.get("set"), where))
    return cells


def _value_text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else toml_value(value).strip('"')


def _sweep(read: _Reader, raw: Any, cells: Mapping[str, Cell]) -> Sweep:
    table = read.table(raw, "sweep")
    read.keys(table, SWEEP_KEYS, "sweep")
    cell, key, values = table.get("cell"), table.get("key"), table.get("values")
    if cell not in cells:
        raise read.error("sweep", f"'cell' must name a cell, got {cell!r}.{did_you_mean(str(cell), cells)} "
                                  f"Cells: {', '.join(cells)}.")
    if not isinstance(key, str) or not key or "=" in key:
        raise read.error("sweep", "'key' must be a recipe key in --set syntax, e.g. \"aux.igdm.alpha.end\"; "
                                  f"got {key!r}")
    if not isinstance(values, list) or not values:
        raise read.error("sweep", f"'values' must be a non-empty list, got {values!r}")
    name = table.get("name", key.rsplit(".", 1)[-1])
    if not isinstance(name, str) or not LABEL.match(name):
        raise read.error("sweep", f"'name' must be a simple name, got {name!r}")
    labels = table.get("labels") or [f"{cell}@{name}={_value_text(v)}" for v in values]
    if not isinstance(labels, list) or len(labels) != len(values) or not all(isinstance(x, str) for x in labels):
        raise read.error("sweep", f"'labels' must be a list of {len(values)} strings, one per value")
    for label in labels:
        if not LABEL.match(label):
            raise read.error("sweep", f"the cell label {label!r} is not a valid directory name; give 'labels'")
        if label in cells:
            raise read.error("sweep", f"the sweep cell {label!r} collides with the cell of that name")
    if len(set(labels)) != len(labels):
        raise read.error("sweep", f"two sweep values give the same cell label: {labels}")
    return Sweep(cell, key, name, tuple(values), tuple(labels))


def _expand_sweep(cells: Mapping[str, Cell], sweep: Sweep) -> dict[str, Cell]:
    # the swept cell is replaced by one cell per value, in place
    expanded = {}
    for label, cell in cells.items():
        if label != sweep.cell:
            expanded[label] = cell
            continue
        for value, new_label in zip(sweep.values, sweep.labels):
            overrides = (*cell.overrides, f"{sweep.key}={toml_value(value)}")
            expanded[new_label] = Cell(new_label, cell.recipe, overrides, value)
    return expanded


def _pairs(read: _Reader, raw: Any, cells: Mapping[str, Cell]) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        raise read.error("", f"'pairs' must be a list of [first, second] cell labels, got {raw!r}")
    pairs = []
    for pair in raw:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise read.error("", f"each pair must be [first, second] (two cell labels), got {pair!r}")
        for label in pair:
            if label not in cells:
                raise read.error("", f"pair {pair}: no cell {label!r}.{did_you_mean(label, cells)} "
                                     f"Cells: {', '.join(cells)}.")
        if pair[0] == pair[1]:
            raise read.error("", f"pair {pair} compares a cell with itself")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def placeholders(overrides: Sequence[str]) -> list[str]:
    """The setup names that ``{runs.<name>}`` placeholders in ``overrides`` refer to."""
    return [name for text in overrides for name in PLACEHOLDER.findall(text)]


def _check_placeholders(read: _Reader, study: Study) -> None:
    known: list[str] = []
    for name, run in study.setup.items():  # a setup run may use the ones defined before it
        _check_refs(read, f"setup.{name}", run.overrides, known, study.setup)
        known.append(name)
    _check_refs(read, "set", study.overrides, known, study.setup)
    for label, cell in study.cells.items():
        _check_refs(read, f"cells.{label}", cell.overrides, known, study.setup)


def _check_refs(read: _Reader, where: str, overrides: Sequence[str], known: Sequence[str], setup: Mapping) -> None:
    for name in placeholders(overrides):
        if name not in known:
            later = " (setup runs may only use those defined before them)" if name in setup else ""
            raise read.error(where, f"{{runs.{name}}} names no setup run{later}.{did_you_mean(name, known)} "
                                    f"Setup runs: {', '.join(known) or 'none'}.")


def substitute(overrides: Sequence[str], run_dirs: Mapping[str, Path]) -> tuple[str, ...]:
    """Replace ``{runs.<name>}`` by that setup run's directory (escaped for a TOML string)."""

    def path_of(match: re.Match) -> str:
        text = str(run_dirs[match.group(1)])
        return text.replace("\\", "\\\\").replace('"', '\\"')

    return tuple(PLACEHOLDER.sub(path_of, text) for text in overrides)
