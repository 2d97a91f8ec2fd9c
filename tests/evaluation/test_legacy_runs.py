"""A run directory written before the validation split (tests/evaluation/data/legacy_run, by
advdistill 0.1.0 at b83842d) still evaluates, and its report says how its best was chosen."""

import json
import shutil
from pathlib import Path

import pytest

from advdistill.engine.checkpoint import read_metadata
from advdistill.evaluation.records import read_per_example

LEGACY = Path(__file__).parent / "data" / "legacy_run"


@pytest.fixture
def legacy(tmp_path):
    run = tmp_path / "legacy_run"
    shutil.copytree(LEGACY, run)
    return run


def test_the_fixture_is_a_run_from_before_the_validation_split():
    recipe = json.loads((LEGACY / "recipe.json").read_text())
    assert "val_size" not in recipe["data"] and "periodic_eval" in recipe["callbacks"]
    meta = read_metadata(LEGACY / "checkpoints" / "best.safetensors")
    assert "split" not in meta and meta["best_metric"] == "pgd" and meta["epoch"] == 2


def test_a_legacy_run_evaluates_last_and_best_and_flags_the_test_selected_best(cli_runner, legacy):
    result = cli_runner("eval", str(legacy))
    report = json.loads((legacy / "report.json").read_text())
    assert report["errors"] == {} and report["n_examples"] == 32
    assert report["checkpoint"]["name"] == "last" and report["checkpoint"]["rule"] == "last"
    assert list(report["checkpoints"]) == ["last", "best"]
    assert report["checkpoints"]["best"]["selected_by"] == {
        "metric": "pgd", "split": "test", "epoch": 2, "value": 37.5, "legacy": True}
    assert "on TEST images" in result.output and "have seen the test set" in result.output
    assert set(read_per_example(legacy)) == {"last", "best"}


def test_reporting_a_legacy_best_says_so_in_its_own_line(cli_runner, legacy):
    cli_runner("eval", str(legacy), "--checkpoint", "best")
    text = (legacy / "report.md").read_text()
    line = next(line for line in text.splitlines() if line.startswith("- reported checkpoint:"))
    assert "`best` (epoch 2), rule `best`" in line and "on TEST images" in line and "optimistic" in line
    assert "| **best** (epoch 2; TEST (legacy) pgd 37.50; reported) |" in text
