"""recipes/paper/numbers.toml: values checked by hand against the paper, one entry per paper recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from advdistill.evaluation import paper
from advdistill.recipe.loading import load_chain
from advdistill_recipes import generate

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
CELLS = paper.cells()


# (cell, key, value as printed in the paper), typed from the paper's tables by hand
@pytest.mark.parametrize("cell,key,value", [
    ("cifar10/resnet18/pgd_at", "clean", 84.52),                  # Table 2, first row
    ("cifar100/resnet18/bdm_at/adaad+igdm", "autoattack", 30.32),  # the abstract's 30.32 %
    ("cifar100/mobilenetv2/bdm_at/rslad+igdm", "autoattack", 29.52),  # the abstract's 29.52 %
    ("cifar100/resnet18/bdm_at/adaad", "autoattack", 28.06),       # the abstract's 28.06 %
    ("cifar100/mobilenetv2/bdm_at/rslad", "autoattack", 26.18),    # the abstract's 26.18 %
    ("cifar10/resnet18/ikl_at/iad+igdm", "pgd20", 56.20),
    ("cifar100/resnet18/ltd/ard", "gc", 0.592),
    ("cifar10/mobilenetv2/ikl_at/iad", "gc", 0.39),                # printed with two digits
    ("cifar100/mobilenetv2/ikl_at/trades+igdm", "autoattack", 20.12),
    ("cifar10/mobilenetv2/ltd/adaad+igdm", "gd", 0.033),
    ("cifar100/resnet18/bdm_at/adaad-no-tin", "autoattack", 25.62),  # Table 3
    ("cifar100/resnet18/bdm_at/adaad+igdm-no-tin", "minutes_per_epoch", 3.36),
    ("cifar100/resnet18/bdm_at/adaad", "minutes_per_epoch", 10.62),
])
def test_hand_picked_values(cell, key, value):
    assert CELLS[cell][key] == value


def test_teacher_free_rows_give_gd_and_gc_per_teacher():
    row = CELLS["cifar100/resnet18/pgd_at"]
    assert (row["clean"], row["pgd20"], row["autoattack"]) == (55.80, 19.88, 18.86)
    assert row["gd"] == {"ltd": 0.452, "bdm_at": 0.173, "ikl_at": 0.460}
    assert row["gc"] == {"ltd": 0.389, "bdm_at": 0.403, "ikl_at": 0.306}


def test_every_paper_recipe_has_numbers_and_every_entry_a_recipe():
    recipes = {p.relative_to(RECIPES / "paper").with_suffix("").as_posix()
               for p in (RECIPES / "paper").rglob("*.toml") if "base" not in p.parts and p.name != "numbers.toml"}
    assert recipes == set(CELLS)
    assert set(CELLS) == {generate.cell_id(*cell) for cell in generate.paper_cells(generate.read_table())}


def test_entries_name_their_tables_and_keys():
    table = generate.read_table()
    for cell, entry in CELLS.items():
        student = cell.split("/")[1]
        expected = table["students"][student]["paper_table"]
        assert set(entry) <= {"tables", *paper.METRICS, "minutes_per_epoch"}, cell
        if cell.endswith("-no-tin"):
            assert entry["tables"] == [3] and set(entry) == {"tables", "autoattack", "gd", "gc", "minutes_per_epoch"}
        else:
            assert entry["tables"][0] == expected and set(paper.METRICS) <= set(entry), cell
        for key in ("clean", "pgd20", "autoattack"):
            if key in entry:
                assert 0 < entry[key] < 100, (cell, key)
        assert entry.get("pgd20", 100) >= entry["autoattack"], cell  # AutoAttack is the stronger attack


def test_table3_rows_with_the_teacher_are_table2_cells():
    # Table 3's AdaAD and IGDM_AdaAD rows repeat Table 2's (CIFAR-100, ResNet-18, BDM-AT)
    for leaf, aa, gd, gc in (("adaad", 28.06, 0.107, 0.567), ("adaad+igdm", 30.32, 0.093, 0.632)):
        entry = CELLS[f"cifar100/resnet18/bdm_at/{leaf}"]
        assert entry["tables"] == [2, 3] and (entry["autoattack"], entry["gd"], entry["gc"]) == (aa, gd, gc)
    assert sum("minutes_per_epoch" in e for e in CELLS.values()) == 4


def test_teachers_are_those_of_the_teacher_bases():
    for key, name in paper.load_numbers()["teachers"].items():
        for dataset in ("cifar10", "cifar100"):
            data, _ = load_chain(RECIPES / "base" / "teachers" / dataset / f"{key}.toml")
            assert data["teacher"]["name"] == name and data["teacher"]["dataset"] == dataset
