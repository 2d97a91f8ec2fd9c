"""A tiny two-cell × two-seed study end to end on synthetic data, per-image test included."""

import json

import pytest
import torch

import advdistill as ad
from advdistill.components import build_student, load_data
from advdistill.engine.checkpoint import load_weights
from advdistill.study import run_study

PNG = b"\x89PNG\r\n\x1a\n"


def clean_outcomes(run_dir):
    """1 where the checkpoint the run reports classifies the test image correctly (computed here, independently)."""
    recipe = ad.load_recipe(run_dir / "recipe.json")
    report = json.loads((run_dir / "report.json").read_text())
    splits = load_data(recipe)
    model = build_student(recipe, splits.info)
    load_weights(report["checkpoint"]["path"], model)
    with torch.no_grad():
        predicted = model.eval()(splits.test_x.float() / 255).argmax(1)
    return predicted == splits.test_y


@pytest.mark.slow  # ~25 s on the 2-core machine: five tiny trainings
def test_tiny_study_end_to_end(study_dir):
    out = study_dir / "out"
    lines = []
    summary = run_study(study_dir / "study.toml", out=out, echo=lines.append)
    assert [line.split()[1] for line in lines if line.startswith("[")] == [
        "setup/teacher", "rslad/seed0", "rslad+igdm/seed0", "rslad/seed1", "rslad+igdm/seed1"]
    assert lines[-1] == f"study report: {out / 'study.md'}"
    for cell in ("rslad", "rslad+igdm"):
        for seed in (0, 1):
            run = out / cell / f"seed{seed}"
            recipe = json.loads((run / "recipe.json").read_text())
            assert recipe["train"]["seed"] == seed
            assert recipe["teacher"]["path"] == str(out / "setup" / "teacher" / "checkpoints" / "last.safetensors")
            assert ("igdm" in recipe["aux"]) == (cell == "rslad+igdm")
    reports = {(c, s): json.loads((out / c / f"seed{s}" / "report.json").read_text())["metrics"]
               for c in ("rslad", "rslad+igdm") for s in (0, 1)}
    cells = summary["cells"]
    assert cells["rslad"]["metrics"]["clean"]["values"] == {"0": reports["rslad", 0]["clean"],
                                                           "1": reports["rslad", 1]["clean"]}
    gd = summary["pairs"][0]["metrics"]["gd"]
    assert gd["differences"]["1"] == pytest.approx(reports["rslad+igdm", 1]["gd"] - reports["rslad", 1]["gd"])
    assert gd["mcnemar"]["p_value"] is None and gd["mcnemar"]["per_image"] is False

    # the evaluations wrote per-example records: the per-image test pools both seeds' discordant
    # images, here recomputed from the checkpoints themselves
    expected_b = expected_c = 0
    for seed in (0, 1):
        first = clean_outcomes(out / "rslad" / f"seed{seed}")
        second = clean_outcomes(out / "rslad+igdm" / f"seed{seed}")
        assert first.float().mean().item() * 100 == pytest.approx(reports["rslad", seed]["clean"])
        expected_b += int((first & ~second).sum())
        expected_c += int((~first & second).sum())
    test = summary["pairs"][0]["metrics"]["clean"]["mcnemar"]
    assert (test["b"], test["c"], test["n_pairs"], test["seeds"]) == (expected_b, expected_c, 64, [0, 1])
    assert test["method"] == "exact" and test["missing"] == {}
    text = (out / "study.md").read_text()
    assert "## rslad+igdm − rslad" in text and "exact binomial; b = " in text
    assert summary["plots"] == ["plots/gd_gc_vs_aa.png", "plots/paired_differences.png"]
    assert summary["scatter_accuracy"] == "pgd20"  # no AutoAttack in these recipes
    for name in summary["plots"]:
        assert (out / name).read_bytes().startswith(PNG)

    # a second call trains nothing and gives the same summary
    lines.clear()
    again = run_study(study_dir / "study.toml", out=out, echo=lines.append)
    assert not any(line.startswith(("starting", "resuming")) for line in lines)
    assert again["pairs"] == summary["pairs"] and again["cells"] == summary["cells"]


@pytest.mark.slow
def test_parallel_jobs_give_the_same_results(study_dir):
    """--jobs 2 (one-thread subprocesses) reproduces the in-process results exactly (CPU is deterministic)."""
    serial = run_study(study_dir / "study.toml", out=study_dir / "serial", echo=lambda line: None)
    parallel = run_study(study_dir / "study.toml", out=study_dir / "parallel", jobs=2, echo=lambda line: None)
    for cell in ("rslad", "rslad+igdm"):
        assert parallel["cells"][cell]["metrics"] == serial["cells"][cell]["metrics"]
    assert (study_dir / "parallel" / "rslad" / "seed1" / "run.log").exists()
