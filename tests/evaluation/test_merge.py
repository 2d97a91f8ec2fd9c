"""A later evaluation adds to report.json key by key (with each number's checkpoint, images and time)
instead of replacing it; report.json and per_example.safetensors keep saying the same."""

import json
import shutil
from pathlib import Path

import pytest

import advdistill as ad
from advdistill.evaluation.merge import merge_reports, rows_of
from advdistill.evaluation.records import read_per_example_file

DATA = Path(__file__).parent / "data"


def report(rows, reported="last", dataset="d", sha="s", model="m"):
    """A schema-2 report with ``rows``: {checkpoint: (weights, {key: (value, n, when)}, errors, seconds)}."""
    out = {}
    for name, (weights, numbers, errors, seconds) in rows.items():
        out[name] = {"epoch": 3, "weights": weights, "errors": errors, "seconds": seconds,
                     "metrics": {k: v for k, (v, _, _) in numbers.items()},
                     "metric_info": {k: {"checkpoint": name, "n_examples": n, "evaluated_at": when}
                                     for k, (_, n, when) in numbers.items()}}
    return {"schema": 2, "model": model, "dataset": dataset, "test_sha256": sha, "checkpoint": {"name": reported},
            "checkpoints": out, "metrics": dict(out[reported]["metrics"]), "n_examples": 0}


def test_numbers_of_other_keys_stay_and_the_same_key_is_replaced():
    numbers = {"clean": (90.0, 100, "t1"), "pgd20": (60.0, 100, "t1"), "autoattack": (50.0, 10, "t1")}
    old = report({"last": ("w1", numbers, {"aa": "RuntimeError: x"}, {"clean": 1.0, "pgd20": 2.0, "aa": 3.0})})
    new = report({"last": ("w1", {"clean": (91.0, 8, "t2")}, {}, {"clean": 0.5})})
    merged = merge_reports(old, new)
    assert merged["metrics"] == {"clean": 91.0, "pgd20": 60.0, "autoattack": 50.0}
    info = merged["metric_info"]
    assert (info["clean"]["n_examples"], info["clean"]["evaluated_at"]) == (8, "t2")
    assert (info["pgd20"]["n_examples"], info["pgd20"]["evaluated_at"]) == (100, "t1")
    assert merged["n_examples"] == 8  # the fewest images any reported number used
    assert merged["errors"] == {"aa": "RuntimeError: x"} and merged["seconds"] == {"clean": 0.5, "pgd20": 2.0,
                                                                                     "aa": 3.0}
    # a metric that runs again drops its old error; a metric that fails now keeps the older number
    again = merge_reports(merged, report({"last": ("w1", {"autoattack": (48.0, 10, "t3")}, {}, {"aa": 4.0})}))
    assert again["errors"] == {} and again["metrics"]["autoattack"] == 48.0
    failed = merge_reports(again, report({"last": ("w1", {}, {"aa": "OSError: y"}, {"aa": 0.1})}))
    assert failed["errors"] == {"aa": "OSError: y"} and failed["metrics"]["autoattack"] == 48.0


def test_a_checkpoint_with_other_weights_loses_its_older_numbers_others_keep_theirs():
    old = report({"last": ("w1", {"clean": (90.0, 100, "t1"), "pgd20": (60.0, 100, "t1")}, {}, {}),
                  "best": ("w0", {"clean": (88.0, 100, "t1"), "pgd20": (62.0, 100, "t1")}, {}, {})})
    new = report({"last": ("w2", {"clean": (93.0, 100, "t2")}, {}, {})})  # a resumed run's new last
    merged = merge_reports(old, new)
    assert merged["checkpoints"]["last"]["metrics"] == {"clean": 93.0}
    assert merged["checkpoints"]["best"]["metrics"] == {"clean": 88.0, "pgd20": 62.0}


@pytest.mark.parametrize("change", [{"dataset": "other"}, {"sha": "other images"}, {"model": "resnet18"}])
def test_a_report_on_other_test_data_or_of_another_model_is_replaced(change):
    old = report({"last": ("w1", {"clean": (90.0, 100, "t1"), "pgd20": (60.0, 100, "t1")}, {}, {})})
    new = report({"last": ("w1", {"clean": (91.0, 100, "t2")}, {}, {})}, **change)
    assert merge_reports(old, new)["metrics"] == {"clean": 91.0}


def test_checks_that_did_not_run_now_keep_their_earlier_result():
    def checks(**statuses):
        return {"n": 100, "results": {k: {"status": v, "message": v} for k, v in statuses.items()}}

    old = report({"last": ("w1", {"clean": (90.0, 100, "t1")}, {}, {})})
    old["checkpoints"]["last"]["checks"] = checks(ordering="passed", more_steps="flagged")
    new = report({"last": ("w1", {"clean": (91.0, 100, "t2")}, {}, {})})
    new["checkpoints"]["last"]["checks"] = checks(ordering="passed", more_steps="not run")
    merged = merge_reports(old, new)
    assert merged["checks"]["results"]["more_steps"]["status"] == "flagged"
    assert merged["checks"]["flagged"] == ["more_steps"]


def test_a_schema_1_report_is_read_with_what_it_says():
    old = json.loads((DATA / "schema1_report" / "report.json").read_text())
    rows = rows_of(old)
    assert set(rows) == {"last", "best"}
    assert rows["last"]["metric_info"]["pgd2"] == {"checkpoint": "last", "epoch": 3, "n_examples": 32,
                                                   "evaluated_at": None, "unit": "%"}


@pytest.fixture
def run(tiny_recipe, tmp_path):
    """A trained tiny run whose end-of-training evaluation wrote clean and PGD-2 on its 32 test images."""
    return ad.train(tiny_recipe(), tmp_path / "run")


def consistent(run_dir):
    """Every number says whether per_example.safetensors has its flags, and says it truthfully."""
    saved = json.loads((run_dir / "report.json").read_text())
    records = read_per_example_file(run_dir)
    for name, row in saved["checkpoints"].items():
        for key, entry in row["metric_info"].items():
            if entry["unit"] != "%":
                continue
            flags = records.records.get(name, {}).get(key)
            has = flags is not None and flags.numel() == entry["n_examples"]
            assert entry["per_example"] == has, (name, key)
            if has:
                assert 100.0 * flags.float().mean().item() == pytest.approx(row["metrics"][key])
    return saved


def test_a_partial_evaluation_adds_to_the_report(cli_runner, run):
    first = consistent(run)
    assert set(first["metrics"]) == {"clean", "pgd2"} and first["schema"] == 2
    assert first["metric_info"]["pgd2"]["n_examples"] == 32 and first["metric_info"]["pgd2"]["per_example"]
    # a quick clean accuracy on 8 images: PGD-2 (32 images) stays, with its own provenance
    cli_runner("eval", str(run), "--metrics", "clean", "--limit", "8")
    second = consistent(run)
    assert set(second["metrics"]) == {"clean", "pgd2"}
    assert second["metric_info"]["clean"]["n_examples"] == 8 and second["metric_info"]["pgd2"]["n_examples"] == 32
    assert second["metric_info"]["pgd2"]["evaluated_at"] == first["metric_info"]["pgd2"]["evaluated_at"]
    assert second["metric_info"]["pgd2"]["per_example"] is False  # the records now hold the 8-image evaluation
    assert second["n_examples"] == 8
    text = (run / "report.md").read_text()
    assert "8–32 test images" in text and "| last | pgd2 | 32 (no per-image records) | Linf ε = 8/255 |" in text
    # PGD on all 32 again: both numbers present, each saying where it comes from
    cli_runner("eval", str(run), "--metrics", "pgd")
    third = consistent(run)
    assert (third["metric_info"]["clean"]["n_examples"], third["metric_info"]["pgd2"]["n_examples"]) == (8, 32)
    assert third["metric_info"]["pgd2"]["per_example"] and not third["metric_info"]["clean"]["per_example"]


def test_a_legacy_report_gets_new_numbers_added(cli_runner, tmp_path):
    run = tmp_path / "legacy_run"
    shutil.copytree(DATA / "legacy_run", run)
    for name in ("report.json", "per_example.safetensors"):
        shutil.copy(DATA / "schema1_report" / name, run / name)
    cli_runner("eval", str(run), "--metrics", "clean", "--checkpoint", "last")
    saved = consistent(run)
    assert saved["schema"] == 2 and set(saved["checkpoints"]) == {"last", "best"}
    assert set(saved["metrics"]) == {"clean", "pgd2"}
    assert saved["metric_info"]["pgd2"]["evaluated_at"] is None  # from the schema-1 report
    assert saved["metric_info"]["clean"]["evaluated_at"] is not None
    assert "(not recorded)" in (run / "report.md").read_text()
