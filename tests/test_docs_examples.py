"""Every code example in the README, CONTRIBUTING.md and docs/ is executed, so that none can drift.

- ```python blocks run, file by file in one namespace (as a doctest file), in a temporary working
  directory that holds ``recipes`` and ``studies`` links to the shipped recipes and study files.
  A block whose first line is a comment naming a ``.py`` file (``# my_package/alp.py``) is also
  written there, so that later blocks can import it; every ``test_*`` function a block defines is
  called with the pytest fixtures its parameters name (advdistill.testing's ``tiny_step``,
  ``tiny_recipe``, ...).
- ```toml blocks parse. A complete recipe (with ``schema``) resolves, as the file its first-line
  comment names (``# recipes/cifar10/resnet18/x.toml``: its ``extends`` are read from the shipped
  recipes); a fragment whose tables are recipe tables resolves on top of a tiny recipe. A study
  file (with ``cells``) loads and every run it plans resolves, as the file its first-line comment
  names (``# studies/x.toml``: its recipes are read from the shipped ones).
- ```bash blocks (and ``advdistill`` lines of unlabelled blocks): each ``advdistill`` command line is
  parsed against the real click commands (an unknown command or option fails); the cheap ones with
  no placeholder (``plugins``, ``recipe show/check/keys``, ``teacher list``, ``--help``) really run.
  ``make TARGET`` needs the Makefile target, ``python path.py`` the script.

An example that cannot run here carries ``<!-- example: not run (the reason) -->`` on the line before
its block; ``<!-- example: slow -->`` runs a python block only with the slow tests.
"""

from __future__ import annotations

import copy
import inspect
import re
import shlex
import shutil
import sys
from pathlib import Path

import attrs
import click
import pytest

import advdistill
from advdistill.recipe import loading, schema
from advdistill.recipe.loading import tomllib
from advdistill.testing import TINY_RECIPE, to_toml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "examples" / "advdistill-example" / "README.md"]
FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w+-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*example:\s*(.*?)\s*-->\s*$")
NOT_RUN = re.compile(r"not run \((.+)\)")
SHELLS = ("bash", "sh", "shell", "console")
#: the few examples that cannot run here; each marker names its reason (keep this list short)
MAX_NOT_RUN = 3


@attrs.define
class Block:
    doc: Path
    line: int  # of the opening fence, from 1
    lang: str
    text: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return not (self.marker or "").startswith("not run")


def blocks_of(doc: Path) -> list[Block]:
    lines = doc.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang = match.groups()
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == fence)
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:end]]
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(before)
        found.append(Block(doc, i + 1, lang, "\n".join(body) + "\n", marker.group(1) if marker else None))
        i = end + 1
    return found


ALL_BLOCKS = [block for doc in DOCS for block in blocks_of(doc)]


def test_the_examples_are_found():
    langs = {block.lang for block in ALL_BLOCKS}
    assert {"python", "toml", "bash"} <= langs
    assert len(ALL_BLOCKS) > 25


def test_markers_are_known_and_not_run_ones_say_why():
    markers = [b for b in ALL_BLOCKS if b.marker is not None]
    for block in markers:
        reason = NOT_RUN.fullmatch(block.marker)
        assert block.marker == "slow" or (reason and reason.group(1).strip()), (
            f"{block.where}: unknown example marker {block.marker!r}; use "
            "`<!-- example: not run (the reason) -->` or `<!-- example: slow -->`"
        )
    for doc in DOCS:  # a marker must sit right before a block
        text = doc.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(text, 1):
            if MARKER.match(line):
                following = next((t for t in text[number:] if t.strip()), "")
                assert FENCE.match(following), f"{doc.relative_to(ROOT)}:{number}: an example marker without a block"
    not_run = [f"{b.where} ({b.marker})" for b in markers if not b.runs]
    assert len(not_run) <= MAX_NOT_RUN, f"too many examples are not run: {not_run}"


# -- python ----------------------------------------------------------------------------------------

PYTHON_DOCS = [doc for doc in DOCS if any(b.lang == "python" for b in blocks_of(doc))]
MODULE_HEADER = re.compile(r"#\s*([\w/.-]+\.py)\b")


def _python_param(doc: Path):
    slow = any(b.lang == "python" and b.marker == "slow" for b in blocks_of(doc))
    return pytest.param(doc, id=str(doc.relative_to(ROOT)), marks=[pytest.mark.slow] if slow else [])


@pytest.fixture(scope="module")
def example_run(tmp_path_factory) -> Path:
    """A tiny trained and evaluated run directory: what the examples call ``runs/x``."""
    root = tmp_path_factory.mktemp("example-run")
    (root / "recipe.toml").write_text(to_toml(TINY_RECIPE), encoding="utf-8")
    return advdistill.train(root / "recipe.toml", root / "x")


@pytest.mark.parametrize("doc", [_python_param(doc) for doc in PYTHON_DOCS])
def test_python_examples_run(doc, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    for folder in ("recipes", "studies"):
        (tmp_path / folder).symlink_to(ROOT / folder, target_is_directory=True)
    if any("runs/x" in b.text for b in blocks_of(doc) if b.lang == "python" and b.runs):
        shutil.copytree(request.getfixturevalue("example_run"), tmp_path / "runs" / "x")
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {"__name__": "docs_example"}
    modules_before = set(sys.modules)
    try:
        for block in blocks_of(doc):
            if block.lang != "python" or not block.runs:
                continue
            header = MODULE_HEADER.match(block.text)
            if header:
                target = tmp_path / header.group(1)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.text, encoding="utf-8")
            names = set(namespace)
            # padded with blank lines, so that a traceback points at the line in the .md file
            exec(compile("\n" * block.line + block.text, str(doc), "exec"), namespace)
            for name in sorted(set(namespace) - names):
                function = namespace[name]
                if name.startswith("test_") and inspect.isfunction(function):
                    fixtures = {p: request.getfixturevalue(p) for p in inspect.signature(function).parameters}
                    function(**fixtures)
    finally:  # modules the examples wrote (my_package) must not leak into other tests
        for name in set(sys.modules) - modules_before:
            if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(tmp_path)):
                del sys.modules[name]


# -- toml ------------------------------------------------------------------------------------------

TOML_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "toml" and b.runs]
RECIPE_HEADER = re.compile(r"#\s*(recipes/[\w/.+-]+\.toml)\b")
STUDY_HEADER = re.compile(r"#\s*(studies/[\w/.+-]+\.toml)\b")


def shadow_recipes(tmp_path: Path, relative: str) -> Path:
    """A temporary copy of the repository's layout in which ``relative`` can be written: every
    directory on its path is real, every other entry a link to the shipped one."""
    target = tmp_path / relative
    source, shadow = ROOT, tmp_path
    for part in Path(relative).parent.parts:
        shadow.mkdir(exist_ok=True)
        if source.is_dir():
            for entry in source.iterdir():
                if entry.name != part and not (shadow / entry.name).exists():
                    (shadow / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        source, shadow = source / part, shadow / part
    shadow.mkdir(exist_ok=True)
    if source.is_dir():
        for entry in source.iterdir():  # the shipped file of the same name is left out: the example replaces it
            if entry.name != target.name and not (shadow / entry.name).exists():
                (shadow / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    # never write through a link into the repository
    assert not target.is_symlink() and target.parent.resolve().is_relative_to(tmp_path.resolve())
    return target


def _fragment_recipe(fragment: dict) -> dict:
    """The tiny recipe with ``fragment`` on top: a component table replaces, other tables merge."""
    data = copy.deepcopy(TINY_RECIPE)
    for key, value in fragment.items():
        if isinstance(value, dict) and "kind" not in value and isinstance(data.get(key), dict):
            data[key] = loading.deep_merge(data[key], value)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=[b.where for b in TOML_BLOCKS])
def test_toml_examples_parse_and_recipes_resolve(block, tmp_path, monkeypatch):
    data = tomllib.loads(block.text)
    monkeypatch.chdir(tmp_path)
    if "schema" in data and "cells" in data:  # a study file: it loads, and each run's recipe resolves
        from advdistill.study.runner import plan
        from advdistill.study.spec import load_study

        header = STUDY_HEADER.match(block.text)
        path = shadow_recipes(tmp_path, header.group(1)) if header else tmp_path / "study.toml"
        path.write_text(block.text, encoding="utf-8")
        assert plan(load_study(path), tmp_path / "out")
    elif "schema" in data:
        header = RECIPE_HEADER.match(block.text)
        assert header or "extends" not in data, (
            f"{block.where}: a recipe with `extends` starts with a comment naming where it lives, "
            "e.g. `# recipes/cifar10/resnet18/example.toml`"
        )
        path = shadow_recipes(tmp_path, header.group(1)) if header else tmp_path / "example.toml"
        path.write_text(block.text, encoding="utf-8")
        advdistill.load_recipe(path)
    elif set(data) <= schema.TOP_LEVEL_KEYS:
        path = tmp_path / "fragment.toml"
        path.write_text(to_toml(_fragment_recipe(data)), encoding="utf-8")
        advdistill.load_recipe(path)
    # anything else (a pyproject.toml fragment, say) only has to parse


# -- shell -----------------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(\.\.\.)?(\.\w+)?$")
#: commands that are quick and write nothing: run them when an example gives them in full
CHEAP = {("plugins",), ("recipe", "show"), ("recipe", "check"), ("recipe", "keys"), ("recipe", "list"),
         ("teacher", "list")}


def command_lines(block: Block) -> list[str]:
    text = re.sub(r"\\\n\s*", " ", block.text)  # join continued lines
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if block.lang in SHELLS:
        return lines
    return [line for line in lines if line.startswith("advdistill ")]  # unlabelled blocks: commands only


def split_synopsis(line: str) -> tuple[list[str], bool]:
    """The words of a command line (comment dropped) and whether it is concrete: no ``[optional]``,
    ``...`` or PLACEHOLDER words, so that it can be run as written."""
    words = shlex.split(line, comments=True)
    concrete = True
    out = []
    for word in words:
        cleaned = word.strip("[]")
        if cleaned != word or cleaned.endswith("...") or "|" in cleaned:
            concrete = False
        for part in cleaned.split("|"):
            part = part.removesuffix("...")
            if part:
                out.append(part)
    if any(PLACEHOLDER.match(w) for w in out[1:]):
        concrete = False
    return out, concrete


def _options(command: click.Command) -> dict[str, bool]:
    """Option name -> whether it takes a value."""
    out = {"--help": False}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                out[name] = not (param.is_flag or param.count)
    return out


def parse_advdistill(words: list[str], where: str) -> tuple[str, ...]:
    """Walk ``advdistill ...`` through the click commands; fail on an unknown command or option.
    Returns the command path, e.g. ("recipe", "show")."""
    from advdistill.cli import cli

    command, path, args = cli, [], words[1:]
    ctx = click.Context(cli)
    while args:
        word = args.pop(0)
        options = _options(command)
        if word.startswith("-"):
            name, has_value, _ = word.partition("=")
            assert name in options, (
                f"{where}: `{' '.join(words)}`: {' '.join(['advdistill', *path])} has no option {name!r} "
                f"(it has {', '.join(sorted(options))})"
            )
            if options[name] and not has_value and args:
                args.pop(0)
            continue
        if isinstance(command, click.Group):
            sub = command.get_command(ctx, word)
            if hasattr(sub, "resolve"):  # a plugin's command, listed lazily: check the real one
                sub = sub.resolve()
            assert sub is not None, (
                f"{where}: `{' '.join(words)}`: unknown command {word!r} of {' '.join(['advdistill', *path])} "
                f"(commands: {', '.join(command.list_commands(ctx))})"
            )
            command, path = sub, [*path, word]
    return tuple(path)


SHELL_BLOCKS = [b for b in ALL_BLOCKS if b.runs and (b.lang in SHELLS or (not b.lang and command_lines(b)))]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[b.where for b in SHELL_BLOCKS])
def test_shell_examples_name_real_commands(block, cli_runner, monkeypatch):
    monkeypatch.chdir(ROOT)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for line in command_lines(block):
        words, concrete = split_synopsis(line)
        if words[0] == "advdistill":
            path = parse_advdistill(words, block.where)
            if concrete and (path in CHEAP or "--help" in words):
                cli_runner(*words[1:])
        elif words[0] == "make":
            for target in words[1:]:
                assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), (
                    f"{block.where}: the Makefile has no target {target!r}"
                )
        elif words[0] == "python" and len(words) > 1 and words[1].endswith(".py"):
            assert (ROOT / words[1]).is_file(), f"{block.where}: {words[1]} does not exist"
        elif words[0] == "bash" and len(words) > 1 and words[1].endswith(".sh"):
            script = ROOT / words[1]
            assert script.is_file(), f"{block.where}: {words[1]} does not exist"
            for option in (w.partition("=")[0] for w in words[2:] if w.startswith("--")):
                assert option in script.read_text(encoding="utf-8"), f"{block.where}: {words[1]} knows no {option}"
        else:
            pytest.fail(f"{block.where}: cannot check `{line}`; mark the block "
                        "`<!-- example: not run (the reason) -->` if it cannot run here")


def test_the_command_checker_catches_unknown_commands_and_options():
    assert parse_advdistill(["advdistill", "recipe", "show", "R.toml", "--set", "a=1"], "x") == ("recipe", "show")
    assert parse_advdistill(["advdistill", "-v", "eval", "run", "--limit=5", "--device", "cpu"], "x") == ("eval",)
    with pytest.raises(AssertionError, match="unknown command 'shoe'"):
        parse_advdistill(["advdistill", "recipe", "shoe"], "x")
    with pytest.raises(AssertionError, match="has no option '--epochs'"):
        parse_advdistill(["advdistill", "train", "r.toml", "--epochs", "3"], "x")
    assert split_synopsis("advdistill eval RUN_DIR [RUN_DIR...] [--limit N]  # comment") == (
        ["advdistill", "eval", "RUN_DIR", "RUN_DIR", "--limit", "N"], False)
    assert split_synopsis("advdistill recipe show recipes/demo/rslad.toml") == (
        ["advdistill", "recipe", "show", "recipes/demo/rslad.toml"], True)


def inline_commands(doc: Path) -> list[tuple[int, str]]:
    """``advdistill ...`` commands in inline code spans outside the fenced blocks: (line, command)."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    inside, found = False, []
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            found += [(number, span) for span in re.findall(r"`(advdistill [^`]+)`", line)]
    return found


INLINE = [(doc, number, command) for doc in DOCS for number, command in inline_commands(doc)]


@pytest.mark.parametrize(("doc", "number", "command"), INLINE,
                         ids=[f"{d.relative_to(ROOT)}:{n}" for d, n, _ in INLINE])
def test_commands_in_the_prose_are_real(doc, number, command):
    words, _ = split_synopsis(command)
    parse_advdistill(words, f"{doc.relative_to(ROOT)}:{number}")
