"""study.json / study.md from fabricated run directories: hand-computed means, CIs, differences, McNemar."""

import json
import math

import pytest
import torch
from safetensors.torch import save_file

from advdistill.study.report import markdown, summarize, write_study_report
from advdistill.study.runner import plan
from advdistill.study.spec import load_study

PNG = b"\x89PNG\r\n\x1a\n"
T_975_1 = 12.7062047  # Student t quantile, 1 degree of freedom

METRICS = {
    ("rslad", 0): {"clean": 80.0, "pgd20": 40.0, "autoattack": 38.0, "gd": 0.20, "gc": 0.50},
    ("rslad", 1): {"clean": 82.0, "pgd20": 44.0, "autoattack": 41.0, "gd": 0.22, "gc": 0.52},
    ("rslad+igdm", 0): {"clean": 81.0, "pgd20": 43.0, "gd": 0.18, "gc": 0.60},
    ("rslad+igdm", 1): {"clean": 82.0, "pgd20": 46.0, "gd": 0.19, "gc": 0.58},
}
# per-image PGD outcomes: seed 0 gives b = 1 (image 2), c = 3 (images 4, 5, 6);
# seed 1 gives b = 2 (images 2, 3), c = 3 (images 0, 5, 6)
OUTCOMES = {
    ("rslad", 0): [1, 1, 1, 1, 0, 0, 0, 0, 1, 0],
    ("rslad+igdm", 0): [1, 1, 0, 1, 1, 1, 1, 0, 1, 0],
    ("rslad", 1): [0, 1, 1, 1, 1, 0, 0, 1, 1, 1],
    ("rslad+igdm", 1): [1, 1, 0, 0, 1, 1, 1, 1, 1, 1],
}


def write_records(run_dir, outcomes, checkpoint="last", order=None, extra=None):
    order = torch.arange(len(outcomes)) if order is None else order
    tensors = {"index": order.to(torch.int64).contiguous(),
               f"{checkpoint}/pgd20": torch.tensor(outcomes, dtype=torch.uint8)[order].contiguous(),
               f"{checkpoint}/clean": torch.ones(len(order), dtype=torch.uint8)}
    tensors.update(extra or {})
    metadata = {"dataset": json.dumps("synthetic"), "split": json.dumps("test"),
                "checkpoints": json.dumps(sorted({name.partition("/")[0] for name in tensors} - {"index"}))}
    save_file(tensors, str(run_dir / "per_example.safetensors"), metadata=metadata)


def fabricate(study_dir, study_file="study.toml", records=True):
    """Plan the fixture study and fill every run directory with a report (and records) as if it had run."""
    study = load_study(study_dir / study_file)
    runs = plan(study, study_dir / "out")
    for run in runs:
        run.directory.mkdir(parents=True)
        metrics = METRICS.get((run.cell, run.seed), {"clean": 90.0})
        # rslad+igdm's reports use the checkpoint table, rslad's the older checkpoint path
        checkpoint = ({"name": "best", "epoch": 1} if run.cell == "rslad+igdm"
                      else str(run.directory / "checkpoints" / "last.safetensors"))
        report = {"schema": 1, "recipe_hash": run.recipe_hash, "metrics": metrics, "checkpoint": checkpoint}
        (run.directory / "report.json").write_text(json.dumps(report))
        if records and run.cell is not None:
            outcomes = OUTCOMES[run.cell, run.seed]
            if run.cell == "rslad+igdm":
                # a shuffled index for seed 1 (pairing must go by image), and a "last" that must not be used
                order = torch.tensor([3, 7, 0, 9, 1, 8, 2, 6, 4, 5]) if run.seed == 1 else None
                wrong = {"last/pgd20": torch.zeros(10, dtype=torch.uint8)}
                write_records(run.directory, outcomes, "best", order, wrong)
            else:
                write_records(run.directory, outcomes)
    return study, runs


@pytest.fixture
def metric_study(study_dir):
    text = (study_dir / "study.toml").read_text().replace('metrics = ["clean", "pgd20", "gd", "gc"]\n', "")
    (study_dir / "study.toml").write_text(text)
    return study_dir


def test_cell_means_and_t_intervals_by_hand(metric_study):
    study, runs = fabricate(metric_study)
    summary = summarize(study, runs)
    assert summary["metrics"] == ["clean", "pgd20", "autoattack", "gd", "gc"]
    pgd = summary["cells"]["rslad"]["metrics"]["pgd20"]
    # 40 and 44: mean 42, s = 2·√2, half width t_{.975,1} · s / √2 = 2 · 12.706
    assert pgd["n"] == 2 and pgd["mean"] == 42.0 and pgd["sd"] == pytest.approx(2 * math.sqrt(2))
    assert pgd["half_width"] == pytest.approx(2 * T_975_1, abs=1e-5)
    assert pgd["values"] == {"0": 40.0, "1": 44.0}
    assert summary["cells"]["rslad+igdm"]["metrics"]["autoattack"]["n"] == 0
    assert summary["cells"]["rslad"]["seeds_done"] == [0, 1]


def test_paired_differences_and_pooled_mcnemar_by_hand(metric_study):
    study, runs = fabricate(metric_study)
    (pair,) = summarize(study, runs)["pairs"]
    assert (pair["first"], pair["second"]) == ("rslad", "rslad+igdm")
    pgd = pair["metrics"]["pgd20"]
    # d = 3, 2: mean 2.5, s = 1/√2, half width t_{.975,1} · 0.5
    assert pgd["differences"] == {"0": 3.0, "1": 2.0}
    assert pgd["mean"] == 2.5 and pgd["half_width"] == pytest.approx(T_975_1 * 0.5, abs=1e-6)
    test = pgd["mcnemar"]
    # pooled b = 1 + 2, c = 3 + 3: exact two-sided 2 · P(X <= 3 | n = 9) = 2 · 130 / 512
    assert (test["b"], test["c"], test["n_pairs"]) == (3, 6, 20)
    assert test["per_seed"] == {"0": {"b": 1, "c": 3, "n": 10}, "1": {"b": 2, "c": 3, "n": 10}}
    assert test["method"] == "exact" and test["p_value"] == pytest.approx(260 / 512)
    # GD has no per-image records: no test, and it says why
    gd = pair["metrics"]["gd"]
    assert gd["mcnemar"]["p_value"] is None and gd["mcnemar"]["per_image"] is False
    assert gd["differences"] == pytest.approx({"0": -0.02, "1": -0.03})
    text = markdown(summarize(study, runs))
    assert "p = 0.508 (exact binomial; b = 3, c = 6; 2 seeds, 20 image pairs)" in text
    assert "– (not a per-image metric)" in text and "| 42.00 ± 25.41 |" in text


def test_missing_records_are_not_an_error(metric_study):
    study, runs = fabricate(metric_study)
    (metric_study / "out" / "rslad+igdm" / "seed1" / "per_example.safetensors").unlink()
    test = summarize(study, runs)["pairs"][0]["metrics"]["pgd20"]["mcnemar"]
    assert (test["b"], test["c"], test["seeds"]) == (1, 3, [0])
    assert test["missing"] == {"1": "rslad+igdm/seed1 has no per_example.safetensors"}
    for run in runs:
        (run.directory / "per_example.safetensors").unlink(missing_ok=True)
    summary = summarize(study, runs)
    test = summary["pairs"][0]["metrics"]["pgd20"]["mcnemar"]
    assert test["p_value"] is None
    assert test["reason"] == "4 runs without per_example.safetensors (rslad/seed0, rslad+igdm/seed0, ...)"
    assert "| n/a: 4 runs without per_example.safetensors (" in markdown(summary)


def test_a_metric_recorded_by_one_cell_only_gets_a_reason(metric_study):
    study, runs = fabricate(metric_study)
    for run in runs:
        if run.cell == "rslad":  # AutoAttack records for rslad only
            write_records(run.directory, OUTCOMES[run.cell, run.seed],
                          extra={"last/autoattack": torch.ones(10, dtype=torch.uint8)})
    test = summarize(study, runs)["pairs"][0]["metrics"]["autoattack"]["mcnemar"]
    assert test["p_value"] is None and test["per_image"] is True
    assert "rslad+igdm/seed0: no per-image record of 'autoattack'" in test["reason"]


def test_a_metric_no_run_reports_is_named(metric_study):
    text = (metric_study / "study.toml").read_text().replace("pairs = ", 'metrics = ["pgd20", "autoattak"]\npairs = ')
    (metric_study / "typo.toml").write_text(text)
    study, runs = fabricate(metric_study, "typo.toml")
    assert "No finished run reports autoattak (reported keys: autoattack, clean, gc, gd, pgd20)." in markdown(
        summarize(study, runs))


def test_one_seed_gives_no_interval(metric_study):
    text = (metric_study / "study.toml").read_text().replace("seeds = [0, 1]", "seeds = [0]")
    (metric_study / "one.toml").write_text(text)
    study, runs = fabricate(metric_study, "one.toml")
    summary = summarize(study, runs)
    assert summary["cells"]["rslad"]["metrics"]["pgd20"]["half_width"] is None
    assert "40.00 (one seed: no CI)" in markdown(summary)
    assert "+3.00 (one seed: no CI)" in markdown(summary)


def test_unfinished_runs_are_left_out_and_listed(metric_study):
    study, runs = fabricate(metric_study)
    (metric_study / "out" / "rslad" / "seed1" / "report.json").unlink()
    summary = summarize(study, runs)
    assert summary["cells"]["rslad"]["metrics"]["pgd20"]["n"] == 1
    assert summary["pairs"][0]["metrics"]["pgd20"]["differences"] == {"0": 3.0}
    assert "Not finished: rslad/seed1 (to run)" in markdown(summary)


def test_written_files_and_plots(metric_study):
    study, runs = fabricate(metric_study)
    summary = write_study_report(study, runs, metric_study / "out")
    out = metric_study / "out"
    assert json.loads((out / "study.json").read_text())["pairs"][0]["metrics"]["pgd20"]["mcnemar"]["b"] == 3
    assert (out / "study.md").read_text().startswith("# Study: tiny")
    assert summary["plots"] == ["plots/gd_gc_vs_aa.png", "plots/paired_differences.png"]
    assert summary["scatter_accuracy"] == "pgd20"  # rslad+igdm has no AutoAttack
    for name in summary["plots"]:
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 2000
    assert "The GD/GC scatter uses PGD-20" in (out / "study.md").read_text()


def test_sweep_table_and_plot(study_dir):
    text = (study_dir / "study.toml").read_text().replace('pairs = [["rslad", "rslad+igdm"]]\n', "")
    text = text.replace('metrics = ["clean", "pgd20", "gd", "gc"]\n', 'metrics = ["pgd20", "gd"]\n')
    text += '\n[sweep]\ncell = "rslad+igdm"\nkey = "aux.igdm.alpha"\nvalues = [0.5, 2.0]\n'
    (study_dir / "sweep.toml").write_text(text)
    study = load_study(study_dir / "sweep.toml")
    runs = plan(study, study_dir / "out")
    values = {("rslad+igdm@alpha=0.5", 0): 41.0, ("rslad+igdm@alpha=0.5", 1): 43.0,
              ("rslad+igdm@alpha=2.0", 0): 30.0, ("rslad+igdm@alpha=2.0", 1): 30.0}
    for run in runs:
        run.directory.mkdir(parents=True)
        report = {"recipe_hash": run.recipe_hash, "metrics": {"pgd20": values.get((run.cell, run.seed), 50.0)}}
        (run.directory / "report.json").write_text(json.dumps(report))
    summary = write_study_report(study, runs, study_dir / "out")
    rows = summary["sweep"]["rows"]
    assert [r["value"] for r in rows] == [0.5, 2.0]
    assert rows[0]["metrics"]["pgd20"]["mean"] == 42.0 and rows[1]["metrics"]["pgd20"]["half_width"] == 0.0
    text = (study_dir / "out" / "study.md").read_text()
    assert "## Sweep: `aux.igdm.alpha` on rslad+igdm" in text and "| 0.5 | 2 | 42.00 ± 12.71 | – |" in text
    assert "plots/sweep.png" in summary["plots"]
    assert (study_dir / "out" / "plots" / "sweep.png").read_bytes().startswith(PNG)


def test_unreadable_records_are_left_out_with_the_reason_and_pairing_goes_by_image(metric_study):
    study, runs = fabricate(metric_study)
    (metric_study / "out" / "rslad" / "seed0" / "per_example.safetensors").write_bytes(b"garbage")
    # seed 1: rslad evaluated images 0, 1, 2 only; the pairing uses the three images both have
    write_records(metric_study / "out" / "rslad" / "seed1", OUTCOMES["rslad", 1], order=torch.tensor([0, 1, 2]))
    test = summarize(study, runs)["pairs"][0]["metrics"]["pgd20"]["mcnemar"]
    assert test["missing"]["0"].startswith("rslad/seed0: ")
    assert "not a readable per-example file" in test["missing"]["0"]
    # images 0, 1, 2: rslad 0, 1, 1 and rslad+igdm 1, 1, 0 -> b = 1 (image 2), c = 1 (image 0)
    assert test["per_seed"] == {"1": {"b": 1, "c": 1, "n": 3}} and test["seeds"] == [1]
    assert test["p_value"] == 1.0


def test_sweep_ticks_of_table_values_come_from_the_cell_labels():
    from advdistill.study.plots import _tick

    row = {"value": {"kind": "linear", "end": 0.5}, "cell": "rslad+igdm@alpha=0.5"}
    assert _tick(row) == "alpha=0.5"
    assert _tick({"value": {"kind": "step"}, "cell": "custom-label"}) == "{'kind': 'step'}"
