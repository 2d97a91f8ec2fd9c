"""The sanity checks inside `advdistill eval` and the end-of-training evaluation: report.json
(top level and each checkpoint's row), report.md, --checks/--no-checks, [eval] checks."""

import json
import logging

import pytest

import advdistill as ad
from advdistill.recipe.schema import CHECK_NAMES
from advdistill.testing import TINY_RECIPE, to_toml

QUICK_CHECKS = {"n": 8, "square_queries": 5, "steps_factor": 2, "unbounded_steps": 4}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two epochs with a periodic evaluation (last and best), checks in the end-of-training evaluation."""
    root = tmp_path_factory.mktemp("checks")
    data = {**TINY_RECIPE, "data": {**TINY_RECIPE["data"], "val_size": 16},
            "train": {"epochs": 2, "batch_size": 16, "log_every": 2, "device": "cpu"},
            "callbacks": {"progress": False, "periodic_eval": {"kind": "periodic_eval", "steps": 1}},
            "eval": {**TINY_RECIPE["eval"], "checks": QUICK_CHECKS}}
    path = root / "checks.toml"
    path.write_text(to_toml(data))
    return ad.train(path, root / "run")


def test_training_ends_with_checks_for_every_checkpoint(run):
    report = json.loads((run / "report.json").read_text())
    assert list(report["checks"]["results"]) == list(CHECK_NAMES)
    assert report["checks"]["n"] == 8
    for row in report["checkpoints"].values():
        assert set(row["checks"]) == {"n", "flagged", "seconds", "results"}
    assert report["checks"] == report["checkpoints"][report["checkpoint"]["name"]]["checks"]
    for result in report["checks"]["results"].values():
        assert result["status"] in ("passed", "flagged", "not run") and result["message"]
    text = (run / "report.md").read_text()
    assert "## Sanity checks\n\nCheckpoint `last`:" in text
    assert "- `ordering` " in text and "- `more_steps` " in text


def test_no_checks_on_the_command_line_leaves_them_out(cli_runner, run, tmp_path):
    cli_runner("eval", str(run), "--no-checks", "--checkpoint", "last", "--out", str(tmp_path))
    report = json.loads((tmp_path / "report.json").read_text())
    assert "checks" not in report and "checks" not in report["checkpoints"]["last"]
    assert "Sanity checks" not in (tmp_path / "report.md").read_text()


def test_checks_on_the_command_line_override_a_recipe_that_turns_them_off(cli_runner, run, tmp_path):
    off = ["--set", "eval.checks.enabled=false", "--checkpoint", "last"]
    cli_runner("eval", str(run), *off, "--out", str(tmp_path / "off"))
    assert "checks" not in json.loads((tmp_path / "off" / "report.json").read_text())
    result = cli_runner("eval", str(run), *off, "--checks", "--set", "eval.checks.skip=['black_box']",
                        "--out", str(tmp_path / "on"))
    report = json.loads((tmp_path / "on" / "report.json").read_text())
    assert list(report["checks"]["results"]) == [n for n in CHECK_NAMES if n != "black_box"]
    assert "## Sanity checks" in result.output


def test_a_flag_is_a_warning_on_the_command_line(cli_runner, run, tmp_path, caplog):
    # an unbounded attack with 1 step of 2.5e-6 moves no prediction: the accuracy stays at the
    # clean accuracy of these 8 images (> 0), above the threshold 0 %
    with caplog.at_level(logging.WARNING, logger="advdistill.evaluation.checks"):
        result = cli_runner("eval", str(run), "--checkpoint", "last", "--out", str(tmp_path),
                            "--set", "eval.checks.unbounded_eps=1e-6", "--set", "eval.checks.unbounded_steps=1",
                            "--set", "eval.checks.unbounded_max_accuracy=0")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["checks"]["results"]["unbounded"]["accuracy"] > 0
    assert "unbounded" in report["checks"]["flagged"]
    assert "sanity check 'unbounded' flagged: PGD-1 with Linf ε = 1e-06" in caplog.text
    assert "- `unbounded` **FLAGGED**: PGD-1 with Linf ε = 1e-06" in result.output
