"""``advdistill compare``: the table, the scatter's data, the files and the errors."""

import json
from pathlib import Path

import pytest
import torch

from advdistill.errors import DataError
from advdistill.evaluation.compare import compare_runs, comparison_table, load_report, scatter_points

DATA = Path(__file__).parent / "data"


def write_run(root, name, **metrics):
    """A schema-1 report: numbers only (no checkpoint, image count or threat model recorded)."""
    run = root / name
    run.mkdir(parents=True)
    (run / "report.json").write_text(json.dumps({"schema": 1, "name": name, "metrics": metrics}))
    return run


def write_run2(root, name, *, checkpoint="last", epoch=6, n=1000, eps=0.2, norm="linf", n_by_key=None, **metrics):
    """A schema-2 report: each number with its images and, for the robust ones, its threat model."""
    run = root / name
    run.mkdir(parents=True)
    info = {}
    for key in metrics:
        entry = {"checkpoint": checkpoint, "epoch": epoch, "n_examples": (n_by_key or {}).get(key, n),
                 "unit": "%" if key.startswith(("clean", "pgd", "autoattack")) else None}
        if key.startswith(("pgd", "autoattack")):
            entry["threat"] = {"norm": norm, "eps": eps, "source": "[attack]"}
        info[key] = entry
    smallest = min(entry["n_examples"] for entry in info.values())
    report = {"schema": 2, "name": name, "dataset": "mnist5k", "n_examples": smallest,
              "metrics": metrics, "metric_info": info, "checkpoint": {"name": checkpoint, "epoch": epoch},
              "epoch": epoch}
    (run / "report.json").write_text(json.dumps(report))
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
    assert lines[0] == "| run | checkpoint | images | threat model | Clean | PGD-20 | AA | GD ↓ | GC ↑ |"
    # a schema-1 report says neither its checkpoint nor its image count nor its threat model
    assert lines[3] == "| rslad+igdm | ? | ? | ? (not recorded) | 58.40 | 33.00 | 28.60 | 0.220 | 0.670 |"
    partial = comparison_table({"x": {"metrics": {"clean": 50.0}, "n_examples": 100}})
    assert partial.splitlines()[2] == "| x | ? | 100 | – | 50.00 | – | – | – | – |"


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
    assert "| rslad+igdm | ? | ? | ? (not recorded) | 58.40 |" in result.output and "gd_gc_vs_aa.png" in result.output
    error = cli_runner("compare", str(tmp_path / "nothing"), exit_code=2)
    assert "Error:" in error.output and "Traceback" not in error.output


def write_records(run, checkpoint="last", dataset="cifar10", sha="s", **flags):
    from advdistill.evaluation.records import write_per_example

    n = len(next(iter(flags.values())))
    write_per_example(run, {checkpoint: {k: torch.tensor(v, dtype=torch.bool) for k, v in flags.items()}},
                      index=torch.arange(n), dataset=dataset, recipe_hash="h", test_sha256=sha, n_test=n,
                      weights={checkpoint: "w"})


def test_compare_pairs_the_runs_image_by_image_with_mcnemar(runs, tmp_path):
    from advdistill.stats import mcnemar_exact

    # 10 images: rslad right on 0-5; igdm right on 2-9 (only rslad: 0, 1; only igdm: 6-9)
    write_records(runs[0], clean=[1] * 6 + [0] * 4, pgd20=[1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    write_records(runs[1], clean=[0, 0] + [1] * 8, pgd20=[1, 1, 1, 0, 0, 0, 0, 0, 0, 0], autoattack=[0] * 10)
    write_records(runs[2], dataset="cifar100", clean=[1] * 10)
    result = compare_runs(runs, tmp_path / "out")
    pairs = {(p["a"], p["b"]): p for p in result["paired"]}
    assert list(pairs) == [("rslad", "rslad+igdm"), ("rslad", "ard"), ("rslad+igdm", "ard")]
    clean = pairs[("rslad", "rslad+igdm")]["metrics"]["clean"]
    assert clean == {"n": 10, "accuracy_a": 60.0, "accuracy_b": 80.0, "difference": 20.0, "only_a": 2,
                     "only_b": 4, "p_value": mcnemar_exact(2, 4)}
    assert clean["p_value"] == 2 * (1 + 6 + 15) / 64  # 2·P(X ≤ 2), X ~ Bin(6, 1/2)
    assert list(pairs[("rslad", "rslad+igdm")]["metrics"]) == ["clean", "pgd20"]  # metrics both recorded
    assert "different data sets (cifar10 and cifar100)" in pairs[("rslad", "ard")]["skipped"]
    text = (tmp_path / "out" / "comparison.md").read_text()
    assert "| rslad (last) | rslad+igdm (last) | Clean | 10 | 60.00 | 80.00 | +20.00 | 2 | 4 | 0.688 |" in text
    assert "- rslad vs ard: not paired: evaluated on different data sets" in text
    saved = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert saved["paired"][0]["metrics"]["pgd20"]["only_b"] == 2


def test_runs_without_records_are_named_and_the_rest_still_compares(runs, tmp_path):
    write_records(runs[0], clean=[1, 0])
    result = compare_runs(runs[:2])
    assert "rslad+igdm" in result["paired"][0]["skipped"] and "not found" in result["paired"][0]["skipped"]
    assert "not paired" in result["paired_table"] and result["table"].startswith("| run |")


def test_many_runs_are_each_paired_with_the_first(tmp_path):
    from advdistill.evaluation.compare import ALL_PAIRS_UP_TO, run_pairs

    labels = [f"r{i}" for i in range(ALL_PAIRS_UP_TO + 1)]
    assert run_pairs(labels[:3]) == [("r0", "r1"), ("r0", "r2"), ("r1", "r2")]
    assert run_pairs(labels) == [("r0", other) for other in labels[1:]]


def test_the_reported_checkpoint_is_the_one_paired(tmp_path):
    from advdistill.evaluation.records import write_per_example

    a, b = write_run(tmp_path, "a", clean=1.0), write_run(tmp_path, "b", clean=1.0)
    report = json.loads((b / "report.json").read_text())
    (b / "report.json").write_text(json.dumps({**report, "checkpoint": {"name": "best"}}))
    write_records(a, clean=[1, 1, 0])
    write_per_example(b, {"last": {"clean": torch.tensor([0, 0, 0]).bool()},
                          "best": {"clean": torch.tensor([1, 1, 1]).bool()}},
                      index=torch.arange(3), dataset="cifar10", recipe_hash="h", test_sha256="s", n_test=3,
                      weights={"last": "1", "best": "2"})
    pair = compare_runs([a, b])["paired"][0]
    assert (pair["checkpoint_a"], pair["checkpoint_b"]) == ("last", "best")
    assert pair["metrics"]["clean"]["only_b"] == 1 and pair["metrics"]["clean"]["only_a"] == 0


def test_the_table_shows_each_run_s_checkpoint_images_and_threat_model(tmp_path):
    a = write_run2(tmp_path, "a", clean=90.5, pgd20=0.5)
    b = write_run2(tmp_path, "b", checkpoint="best", epoch=4, n=500, n_by_key={"autoattack": 100}, clean=91.0,
                   pgd20=60.25, autoattack=0.75)
    lines = compare_runs([a, b])["table"].splitlines()
    assert lines[2] == "| a | last (epoch 6) | 1000 | Linf ε = 0.2 | 90.50 | 0.50 | – | – | – |"
    assert lines[3] == "| b | best (epoch 4) | 500; AA 100 | Linf ε = 0.2 | 91.00 | 60.25 | 0.75 | – | – |"


def test_runs_on_different_images_or_checkpoints_are_compared_with_a_loud_warning(tmp_path, caplog):
    a = write_run2(tmp_path, "a", clean=90.0, pgd20=60.0)
    b = write_run2(tmp_path, "b", checkpoint="best", n=16, clean=91.0, pgd20=62.0)
    result = compare_runs([a, b], tmp_path / "out")
    assert len(result["warnings"]) == 2
    assert "different numbers of test images (a 1000, b 16)" in result["warnings"][0]
    assert "different checkpoints (a last, b best)" in result["warnings"][1]
    text = (tmp_path / "out" / "comparison.md").read_text()
    assert text.startswith("# Comparison\n\n**Warning:** the runs were evaluated on different numbers of test images")
    assert json.loads((tmp_path / "out" / "comparison.json").read_text())["warnings"] == result["warnings"]
    assert any("compare: the runs were evaluated on different numbers" in r.getMessage() for r in caplog.records)
    same = compare_runs([a, write_run2(tmp_path, "c", clean=1.0, pgd20=1.0)])
    assert same["warnings"] == []


def test_runs_evaluated_at_different_eps_are_not_ranked(tmp_path, cli_runner):
    a = write_run2(tmp_path, "a", clean=90.0, pgd20=60.0, eps=0.2)
    b = write_run2(tmp_path, "b", clean=91.0, pgd20=80.0, eps=8 / 255)
    with pytest.raises(DataError, match=r"different threat models.*PGD-20: a Linf ε = 0\.2, b Linf ε = 8/255"):
        compare_runs([a, b], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    result = cli_runner("compare", str(a), str(b), "--out", str(tmp_path / "out"), exit_code=2)
    assert "cannot be ranked" in result.output and "Traceback" not in result.output
    l2 = write_run2(tmp_path, "l2", clean=91.0, pgd20=80.0, eps=0.2, norm="l2")
    with pytest.raises(DataError, match=r"L2 ε = 0\.2"):
        compare_runs([a, l2])


def test_a_schema_1_report_is_compared_with_a_warning_that_its_threat_model_is_unknown(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.json").write_text((DATA / "schema1_report" / "report.json").read_text())
    new = write_run2(tmp_path, "new", clean=30.0, pgd2=20.0)
    result = compare_runs([old, new])
    assert any("threat model of pgd2 of old is not recorded" in w for w in result["warnings"])
    assert result["table"].splitlines()[2].startswith("| old | last (epoch 3) | 32 | – | 31.25 |")


def test_no_regression_line_through_fewer_than_three_points(tmp_path):
    from advdistill.evaluation.plots import least_squares

    assert least_squares([0.1, 0.2], [30.0, 40.0]) is None
    assert least_squares([0.1, 0.2, 0.3], [30.0, 40.0, 50.0]) == pytest.approx((100.0, 20.0))
    runs = [write_run(tmp_path, f"r{i}", autoattack=30.0 + i, gd=0.3 - i / 10, gc=0.5 + i / 10) for i in range(3)]
    two = compare_runs(runs[:2], tmp_path / "two")
    assert two["regression"] is None
    assert "No regression line in the GD/GC scatter: 2 run(s)" in (tmp_path / "two" / "comparison.md").read_text()
    three = compare_runs(runs, tmp_path / "three")
    assert three["regression"]["gc"]["slope"] == pytest.approx(10.0)
    assert three["regression"]["gd"]["slope"] == pytest.approx(-10.0)
