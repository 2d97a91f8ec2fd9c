"""A finished run beside its IGDM-paper cell: the cell from the recipe name, paper vs ours vs Δ."""

import json

import pytest

from advdistill.errors import DataError
from advdistill.evaluation import paper
from advdistill.evaluation.compare import compare_runs

CELL = "cifar100/resnet18/bdm_at/ard+igdm"  # Table 2: 60.28 / 35.75 / 29.42 / 0.100 / 0.570


def write_run(root, name, epoch_seconds=(), teacher=None, n_examples=10000, **metrics):
    run = root / name
    run.mkdir(parents=True)
    report = {"schema": 1, "name": name, "metrics": metrics, "n_examples": n_examples, "teacher": teacher}
    (run / "report.json").write_text(json.dumps(report))
    records = [{"event": "epoch", "epoch": i + 1, "seconds": s} for i, s in enumerate(epoch_seconds)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def test_a_paper_recipe_name_gives_its_cell():
    assert paper.cell_name(CELL) == "paper-cifar100-resnet18-bdm_at-ard+igdm"
    assert paper.cell_of_name("paper-cifar100-resnet18-bdm_at-ard+igdm") == CELL
    assert paper.cell_of_name("paper-cifar10-mobilenetv2-trades") == "cifar10/mobilenetv2/trades"
    assert paper.cell_of_name("cifar100-resnet18-ard+igdm") is None  # the standard grid
    assert paper.cell_of_name("paper-cifar100-resnet18-bdm_at-mart") is None
    assert paper.cell_of_name(None) is None


def test_unknown_cell_names_the_closest():
    with pytest.raises(DataError, match="cifar100/resnet18/bdm_at/ard\\+igdm"):
        paper.check_cell("cifar100/resnet18/bdm_at/ard+igmd")


def test_delta_is_ours_minus_paper():
    report = {"metrics": {"clean": 61.0, "pgd20": 35.0, "gd": 0.11, "gc": 0.5}, "n_examples": 1000}
    row = paper.compare_to_paper(CELL, report)
    assert row["paper"]["clean"] == 60.28 and row["paper"]["autoattack"] == 29.42
    assert row["ours"]["autoattack"] is None and row["delta"]["autoattack"] is None
    assert row["delta"]["clean"] == pytest.approx(61.0 - 60.28)
    assert row["delta"]["pgd20"] == pytest.approx(35.0 - 35.75)
    assert row["delta"]["gd"] == pytest.approx(0.11 - 0.100)
    assert row["delta"]["gc"] == pytest.approx(0.5 - 0.570)
    assert row["tables"] == [2] and row["n_examples"] == 1000


def test_teacher_free_rows_take_gd_gc_of_the_reports_teacher():
    cell = "cifar100/resnet18/pgd_at"  # GD 0.452 (LTD), 0.173 (BDM-AT), 0.460 (IKL-AT)
    assert paper.paper_values(cell, {"teacher": None})["gd"] is None
    ltd = {"teacher": {"kind": "robustbench", "name": "Chen2021LTD_WRN34_10", "dataset": "cifar100"}}
    assert paper.paper_values(cell, ltd)["gd"] == 0.452 and paper.paper_values(cell, ltd)["gc"] == 0.389
    assert paper.paper_values(cell, ltd)["clean"] == 55.80


def test_compare_puts_a_paper_run_beside_its_cell(tmp_path, cli_runner):
    run = write_run(tmp_path, "paper-cifar100-resnet18-bdm_at-ard+igdm", clean=59.10, pgd20=34.20,
                    autoattack=28.00, gd=0.105, gc=0.560, n_examples=2000)
    other = write_run(tmp_path, "mine", clean=50.0)
    out = tmp_path / "cmp"
    result = cli_runner("compare", str(run), str(other), "--out", str(out))
    lines = result.output.splitlines()
    start = lines.index("| run | paper cell | | Clean | PGD-20 | AA | GD ↓ | GC ↑ |")
    assert lines[start + 2] == (
        f"| paper-cifar100-resnet18-bdm_at-ard+igdm | {CELL} (Table 2) | paper "
        "| 60.28 | 35.75 | 29.42 | 0.100 | 0.570 |")
    assert lines[start + 3] == "| | | ours | 59.10 | 34.20 | 28.00 | 0.105 | 0.560 |"
    assert lines[start + 4] == "| | | Δ | −1.18 | −1.55 | −1.42 | +0.005 | −0.010 |"
    assert "ours on 2000 test images" in result.output
    saved = json.loads((out / "comparison.json").read_text())
    assert set(saved["paper"]) == {"paper-cifar100-resnet18-bdm_at-ard+igdm"}  # "mine" has no cell
    assert saved["paper"]["paper-cifar100-resnet18-bdm_at-ard+igdm"]["delta"]["autoattack"] == pytest.approx(-1.42)
    assert "Paper vs ours" in (out / "comparison.md").read_text()


def test_paper_flag_requires_a_cell_and_cell_names_it(tmp_path, cli_runner):
    run = write_run(tmp_path, "my-ard", clean=59.0, autoattack=28.0)
    result = cli_runner("compare", str(run), "--paper", "--out", str(tmp_path), exit_code=2)
    assert "no paper cell known for my-ard" in result.output and "--cell" in result.output
    result = cli_runner("compare", str(run), "--cell", CELL, "--out", str(tmp_path))
    assert "| ours | 59.00 | – | 28.00 |" in result.output
    other = write_run(tmp_path, "second", clean=1.0)
    result = cli_runner("compare", str(run), str(other), "--cell", CELL, "--out", str(tmp_path), exit_code=2)
    assert "one run" in result.output


def test_table3_cells_show_our_time_per_epoch_without_delta(tmp_path):
    run = write_run(tmp_path, "paper-cifar100-resnet18-bdm_at-adaad+igdm-no-tin", epoch_seconds=(200.0, 180.0, 190.0),
                    autoattack=29.0, gd=0.1, gc=0.6)
    result = compare_runs([run], tmp_path / "cmp")
    row = result["paper"][run.name]
    assert row["tables"] == [3] and row["paper"]["minutes_per_epoch"] == 3.36
    assert row["ours"]["minutes_per_epoch"] == pytest.approx(190.0 / 60, abs=1e-3)  # the median epoch
    assert "T/E (min)" in result["paper_table"] and "no Δ" in result["paper_table"]
    assert row["paper"]["clean"] is None and "| paper | – | – | 29.34 |" in result["paper_table"]
