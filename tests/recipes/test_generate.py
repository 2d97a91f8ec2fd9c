"""The leaf recipes are what recipes/leaves.toml generates: regenerated into a temporary folder, they
are byte for byte the committed ones (a stale leaf fails here), and the generator's rules hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from advdistill.evaluation.paper import cell_name
from advdistill_recipes import generate

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_committed_leaves_are_what_the_table_generates(tmp_path):
    assert generate.main(["--out", str(tmp_path)]) == 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.toml"))
    table = generate.read_table()
    assert written == sorted(generate.generate(table))
    stale = [rel for rel in written if (RECIPES / rel).read_text() != (tmp_path / rel).read_text()]
    assert not stale, f"run `python -m advdistill_recipes.generate`: stale leaves {stale[:5]}"
    assert generate.differences(RECIPES, generate.generate(table), table) == []


def test_check_names_stale_missing_and_leftover_leaves(tmp_path, capsys):
    generate.main(["--out", str(tmp_path)])
    assert generate.main(["--check", "--out", str(tmp_path)]) == 0
    leaf = tmp_path / "cifar10" / "resnet18" / "ard.toml"
    leaf.write_text(leaf.read_text() + "\n[train]\nepochs = 3\n")
    (tmp_path / "cifar10" / "resnet18" / "rslad.toml").unlink()
    (tmp_path / "paper" / "cifar10" / "resnet18" / "by-hand.toml").write_text("schema = 1\n")
    capsys.readouterr()
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "stale: cifar10/resnet18/ard.toml" in out
    assert "missing: cifar10/resnet18/rslad.toml" in out
    assert "not generated (delete it, or add it to the table): paper/cifar10/resnet18/by-hand.toml" in out


@pytest.mark.parametrize("leaf,expected", [
    ("rslad", ("rslad", False, False)),
    ("pgd_at+igdm", ("pgd_at", True, False)),
    ("adaad+igdm-no-tin", ("adaad", True, True)),
    ("adaad-no-tin", ("adaad", False, True)),
])
def test_split_leaf(leaf, expected):
    assert generate.split_leaf(leaf) == expected


def test_paper_cells_cover_tables_2_3_and_4():
    table = generate.read_table()
    cells = [generate.cell_id(*cell) for cell in generate.paper_cells(table)]
    assert len(cells) == len(set(cells))
    # per data set and student: PGD-AT and TRADES once, the other 10 leaves once per teacher; plus Table 3
    assert len(cells) == 2 * 2 * (2 + 10 * 3) + 2
    assert "cifar100/mobilenetv2/pgd_at" in cells and "cifar100/mobilenetv2/ltd/pgd_at" not in cells
    assert "cifar10/resnet18/ikl_at/trades+igdm" in cells
    assert {"cifar100/resnet18/bdm_at/adaad-no-tin", "cifar100/resnet18/bdm_at/adaad+igdm-no-tin"} <= set(cells)
    assert cell_name("cifar100/resnet18/bdm_at/ard+igdm") == "paper-cifar100-resnet18-bdm_at-ard+igdm"


def test_the_method_base_is_the_data_set_specific_one_when_it_exists():
    table = generate.read_table()
    assert generate.method_base(table, "ard", "cifar100") == "base/methods/cifar100/ard.toml"
    assert generate.method_base(table, "ard", "cifar10") == "base/methods/ard.toml"
    assert generate.method_base(table, "iad", "cifar100") == "base/methods/iad.toml"


def test_extends_paths_are_relative_to_the_leaf():
    files = generate.generate()
    for rel, text in files.items():
        start = text.index("extends = [")
        for line in text[start:text.index("]", start)].splitlines()[1:]:
            target = (RECIPES / rel).parent / line.strip().strip('",')
            assert target.resolve().is_file(), (rel, line)
