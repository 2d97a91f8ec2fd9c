"""``advdistill compare``: the table, the scatter's data, the files and the errors."""

import json

import pytest

from advdistill.errors import DataError
from advdistill.evaluation.compare import compare_runs, comparison_table, load_report, scatter_points


def write_run(root, name, **metrics):
    run = root / name
    run.mkdir(parents=True)
    (run / "report.json").write_text(json.dumps({"schema": 1, "name": name, "metrics": metrics}))
    return run


@pytest.fixture
def runs(tmp_path):
    return [
        write_run(tmp_path, "rslad", clean=57.1, pgd20=31.2, autoattack=27.0, gd=0.31, gc=0.52),
        write_run(tmp_path, "rslad+igdm", clean=58.4, pgd20=33.0, autoattack=28.6, gd=0.22, gc=0.67),
        write_run(tmp_path, "ard", clean=60.0, pgd20=30.1, autoattack=25.5, gd=0.35, gc=0.45),
    ]


def test_table_has_one_row_per_run_in_the_papers_columns(runs):
    reports = {run.name: load_report(run) for run in runs}
    table = comparison_table(reports)
    lines = table.splitlines()
    assert lines[0] == "| run | Clean | PGD-20 | AA | GD ↓ | GC ↑ |"
    assert lines[3] == "| rslad+igdm | 58.40 | 33.00 | 28.60 | 0.220 | 0.670 |"
    partial = comparison_table({"x": {"metrics": {"clean": 50.0}}})
    assert partial.splitlines()[2] == "| x | 50.00 | – | – | – | – |"


def test_scatter_uses_autoattack_or_falls_back_to_pgd(runs):
    reports = {run.name: load_report(run) for run in runs}
    points, accuracy = scatter_points(reports)
    assert accuracy == "autoattack" and [p["label"] for p in points] == ["rslad", "rslad+igdm", "ard"]
    del reports["ard"]["metrics"]["autoattack"]
    assert scatter_points(reports)[1] == "pgd20"
    assert scatter_points({"x": {"metrics": {"clean": 1.0}}}) == ([], None)


def test_compare_runs_writes_table_json_and_plots(runs, tmp_path):
    record = {"event": "epoch", "epoch": 1, "linearity": 0.1}
    (runs[0] / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    out = tmp_path / "cmp"
    result = compare_runs(runs, out)
    assert (out / "comparison.md").read_text().startswith("# Comparison")
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["scatter_accuracy"] == "autoattack" and saved["runs"]["ard"]["metrics"]["gd"] == 0.35
    assert sorted(p.split("/")[-1] for p in result["plots"]) == ["gd_gc_vs_aa.png", "linearity.png"]
    assert (out / "plots" / "gd_gc_vs_aa.png").read_bytes().startswith(b"\x89PNG")


def test_runs_with_the_same_name_get_distinct_labels(tmp_path):
    a = write_run(tmp_path / "seed0", "rslad", clean=1.0)
    b = write_run(tmp_path / "seed1", "rslad", clean=2.0)
    assert list(compare_runs([a, b])["runs"]) == ["seed0/rslad", "seed1/rslad"]


def test_missing_or_broken_reports_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"report\.json not found: run `advdistill eval"):
        load_report(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "report.json").write_text("{not json")
    with pytest.raises(DataError, match="not a readable report"):
        load_report(tmp_path / "bad")
    (tmp_path / "bad" / "report.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="no \"metrics\""):
        load_report(tmp_path / "bad")
    with pytest.raises(DataError, match="at least one"):
        compare_runs([])


def test_compare_command(cli_runner, runs, tmp_path):
    result = cli_runner("compare", *map(str, runs), "--out", str(tmp_path / "o"))
    assert "| rslad+igdm | 58.40 |" in result.output and "gd_gc_vs_aa.png" in result.output
    error = cli_runner("compare", str(tmp_path / "nothing"), exit_code=2)
    assert "Error:" in error.output and "Traceback" not in error.output
