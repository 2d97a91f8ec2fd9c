"""The study file: validation errors that name the file, key and closest valid keys; expansion."""

import sys
import textwrap
from pathlib import Path

import pytest

from advdistill.errors import StudyError
from advdistill.study.spec import load_study, substitute

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

def write(folder, name, text):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


HEAD = """\
schema = 1
seeds = [0]
"""
CELL = """
[cells.a]
recipe = "teacher.toml"
"""


def error_of(folder, text):
    path = write(folder, "s.toml", text)
    with pytest.raises(StudyError) as err:
        load_study(path)
    return str(err.value), path


def test_the_fixture_study_loads(study_dir):
    study = load_study(study_dir / "study.toml")
    assert study.name == "tiny" and study.seeds == (0, 1)
    assert study.out == Path("runs/studies/tiny")
    assert list(study.cells) == ["rslad", "rslad+igdm"]
    assert study.cells["rslad"].recipe == study_dir / "student.toml"
    # a `set` table is flattened into dotted --set keys
    assert study.cells["rslad+igdm"].overrides == ('aux.igdm.kind="igdm"', "aux.igdm.alpha=2.0")
    assert study.overrides == ('teacher.path="{runs.teacher}/checkpoints/last.safetensors"',)
    assert study.pairs == (("rslad", "rslad+igdm"),)
    assert study.setup["teacher"].recipe == study_dir / "teacher.toml" and study.setup["teacher"].seed is None
    assert study.metrics == ("clean", "pgd20", "gd", "gc") and study.sweep is None


def test_unknown_top_level_key_names_file_key_and_suggestion(study_dir):
    message, path = error_of(study_dir, HEAD + "seed = 3\n" + CELL)
    assert str(path) in message and "unknown key 'seed'" in message
    assert "Did you mean 'seeds'" in message and "Valid keys: schema, name" in message


def test_unknown_cell_and_setup_and_sweep_keys(study_dir):
    message, _ = error_of(study_dir, HEAD + '[cells.a]\nrecipie = "teacher.toml"\n')
    assert "[cells.a]: unknown key 'recipie'. Did you mean 'recipe'?" in message
    message, _ = error_of(study_dir, HEAD + '[setup.t]\nrecipe = "teacher.toml"\nseeds = 1\n' + CELL)
    assert "[setup.t]: unknown key 'seeds'. Did you mean 'seed', 'set'?" in message
    message, _ = error_of(study_dir, HEAD + CELL + '[sweep]\ncell = "a"\nkey = "optim.lr"\nvalue = [1]\n')
    assert "[sweep]: unknown key 'value'. Did you mean 'values'?" in message


@pytest.mark.parametrize(("text", "expected"), [
    ("seeds = [0]\n" + CELL, "expected schema = 1"),
    ("schema = 1\n" + CELL, "'seeds' must be a non-empty list of integers"),
    ("schema = 1\nseeds = [1, 1]\n" + CELL, "lists a seed twice"),
    (HEAD, "a study needs at least one cell"),
    (HEAD + '[cells.setup]\nrecipe = "teacher.toml"\n', "not 'setup'"),
    (HEAD + '[cells."a/b"]\nrecipe = "teacher.toml"\n', "a cell label becomes a directory name"),
    (HEAD + '[cells.a]\nrecipe = "nope"\n', "recipe 'nope' not found (tried"),
    (HEAD + 'metrics = "pgd20"\n' + CELL, "'metrics' must be a list of report keys"),
    (HEAD + 'pairs = [["a", "b"]]\n' + CELL, "pair ['a', 'b']: no cell 'b'"),
    (HEAD + 'pairs = [["a", "a"]]\n' + CELL, "compares a cell with itself"),
    (HEAD + 'pairs = ["a"]\n' + CELL, "each pair must be [first, second]"),
    (HEAD + 'set = ["optim.lr"]\n' + CELL, "is not KEY=VALUE"),
    (HEAD + 'set = ["train.seed=3"]\n' + CELL, "may not change train.seed"),
    (HEAD + 'set = 3\n' + CELL, "'set' must be a list"),
    (HEAD + CELL + '[sweep]\ncell = "b"\nkey = "optim.lr"\nvalues = [1]\n', "'cell' must name a cell"),
    (HEAD + CELL + '[sweep]\ncell = "a"\nkey = "optim.lr"\nvalues = []\n', "'values' must be a non-empty list"),
    (HEAD + CELL + '[sweep]\ncell = "a"\nkey = "optim.lr"\nvalues = [1, 2]\nlabels = ["x"]\n',
     "'labels' must be a list of 2 strings"),
    ('schema = 1\nseeds = [0]\nname = "a b"\n' + CELL, "'name' must be a simple name"),
    ("schema = 1\nseeds = [0\n", "invalid TOML"),
])
def test_validation_errors(study_dir, text, expected):
    message, path = error_of(study_dir, text)
    assert expected in message and str(path) in message


def test_placeholders_must_name_an_earlier_setup_run(study_dir):
    message, _ = error_of(study_dir, HEAD + 'set = ["teacher.path=\\"{runs.teacher}/x\\""]\n'
                          + '[setup.teachr]\nrecipe = "teacher.toml"\n' + CELL)
    assert "[set]: {runs.teacher} names no setup run. Did you mean 'teachr'?" in message
    message, _ = error_of(study_dir, HEAD + '[setup.a]\nrecipe = "teacher.toml"\nset = ["x.y=\\"{runs.b}\\""]\n'
                          + '[setup.b]\nrecipe = "teacher.toml"\n' + CELL)
    assert "[setup.a]: {runs.b} names no setup run (setup runs may only use those defined before them)" in message


def test_missing_file_and_bundled_recipes(study_dir):
    with pytest.raises(StudyError, match="Study file not found"):
        load_study(study_dir / "missing.toml")
    study = load_study(write(study_dir, "s.toml", HEAD + '[cells.demo]\nrecipe = "demo/rslad"\n'))
    assert study.cells["demo"].recipe.parts[-2:] == ("demo", "rslad.toml") and study.cells["demo"].recipe.is_file()


def test_sweep_expands_into_cells_in_place(study_dir):
    study = load_study(write(study_dir, "s.toml", HEAD + 'pairs = [["a", "b@lr=0.5"]]\n' + CELL + """
[cells.b]
recipe = "teacher.toml"
set = ["optim.momentum=0.5"]

[cells.c]
recipe = "teacher.toml"

[sweep]
cell = "b"
key = "optim.lr"
name = "lr"
values = [0.5, 1]
"""))
    assert list(study.cells) == ["a", "b@lr=0.5", "b@lr=1", "c"]
    cell = study.cells["b@lr=1"]
    assert cell.overrides == ("optim.momentum=0.5", "optim.lr=1") and cell.sweep_value == 1
    assert study.sweep.labels == ("b@lr=0.5", "b@lr=1") and study.sweep.key == "optim.lr"
    # a pair naming the swept cell itself is refused with the expanded labels as suggestions
    message, _ = error_of(study_dir, HEAD + 'pairs = [["a", "b"]]\n' + CELL
                          + '[cells.b]\nrecipe = "teacher.toml"\n[sweep]\ncell = "b"\nkey = "optim.lr"\nvalues = [1]\n')
    assert "no cell 'b'" in message and "'b@lr=1'" in message


def test_sweep_default_name_and_explicit_labels(study_dir):
    study = load_study(write(study_dir, "s.toml", HEAD + CELL + """
[sweep]
cell = "a"
key = "aux.igdm.alpha"
values = [{ kind = "linear", end = 1.0 }, 2.5]
labels = ["a-linear", "a-const"]
"""))
    assert study.sweep.name == "alpha" and list(study.cells) == ["a-linear", "a-const"]
    assert study.cells["a-linear"].overrides == ('aux.igdm.alpha={ kind = "linear", end = 1.0 }',)


def test_substitute_escapes_the_path_for_a_toml_string():
    (text,) = substitute(['teacher.path="{runs.t}/c.safetensors"'], {"t": Path('we"ird\\dir')})
    assert tomllib.loads(f"v = {text.partition('=')[2]}")["v"] == 'we"ird\\dir/c.safetensors'


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "studies").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_study_files_resolve(path):
    from advdistill.study.runner import plan

    study = load_study(path)
    runs = plan(study, Path("/nonexistent/study-dir"))  # resolves every run's recipe
    assert len(runs) == len(study.setup) + len(study.cells) * len(study.seeds)
