"""`advdistill demo`, shrunk with --set to seconds: three runs, a summary, nothing overwritten."""

import json

from advdistill_plugins.demo.command import STUDENTS, demo_recipe


def test_demo_recipes_are_installed_and_valid(cli_runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/demo/ of an earlier `make demo` here
    assert demo_recipe("teacher").exists()
    cli_runner("recipe", "check", str(demo_recipe("teacher")))  # its data is embedded: no file is missing
    for name in STUDENTS:
        assert demo_recipe(name).exists()
        # the teacher they distil from is trained by the demo itself: `recipe check` names its missing
        # weights (files are checked by default); --no-files validates the recipe alone
        missing = cli_runner("recipe", "check", str(demo_recipe(name)), exit_code=2)
        assert "runs/demo/teacher/checkpoints/last.safetensors" in missing.output
        cli_runner("recipe", "check", "--no-files", str(demo_recipe(name)))


def test_demo_end_to_end_shrunk(cli_runner, tmp_path):
    out = tmp_path / "demo"
    result = cli_runner(
        "demo", "--out", str(out),
        "--set", "train.epochs=1", "--set", "train.max_steps_per_epoch=2",
        "--set", "eval.limit=32",
        # two steps leave the teacher at chance: the teacher audit would rightly refuse it
        "--set", "train.audit_teacher=false",
    )
    assert "| teacher |" in result.output and "| rslad+igdm |" in result.output
    assert "| sanity checks |" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert [r["run"] for r in summary["runs"]] == ["teacher", "rslad", "rslad+igdm"]
    assert "3,500 train + 500 validation" in result.output and "| last (epoch 1) |" in result.output
    for run in summary["runs"]:
        report = json.loads((out / run["run"] / "report.json").read_text())
        assert report["n_examples"] == 32 and report["errors"] == {}
        if run["run"] == "teacher":  # the students learn from its last weights: no best is chosen
            assert set(report["checkpoints"]) == {"last"}
        else:  # best (chosen on validation digits) is evaluated too; after one epoch it is last
            assert report["checkpoints"]["best"]["selected_by"]["split"] == "val"
            assert report["checkpoints"]["best"]["same_weights_as"] == "last"
        # the sanity checks ran (on the 32 evaluated digits) and the summary names their outcome
        assert report["checks"]["n"] == 32 and len(report["checks"]["results"]) == 8
        flagged = report["checks"]["flagged"]
        statuses = [result["status"] for result in report["checks"]["results"].values()]
        expected = "flagged: " + ", ".join(flagged) if flagged else f"{statuses.count('passed')} passed"
        assert run["checks"].startswith(expected)
    student = json.loads((out / "rslad+igdm" / "recipe.json").read_text())
    assert student["teacher"]["path"] == str(out / "teacher" / "checkpoints" / "last.safetensors")
    assert "gd" in summary["runs"][2]["metrics"]
