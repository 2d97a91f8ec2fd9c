"""report.md: the paper-style table, the ε-curve table, failed metrics."""

import json

from advdistill.evaluation.report import markdown, write_report


def test_markdown_orders_columns_as_the_paper_and_tabulates_the_curve(tmp_path):
    report = {
        "name": "run", "n_examples": 10,
        "metrics": {"gc": 0.61234, "clean": 80.0, "autoattack": 41.5, "pgd20": 45.25, "gd": 0.2, "custom": 3.0,
                    "eps_curve": [{"eps": 8 / 255, "pgd20": 40.0, "autoattack": 35.0},
                                  {"eps": 16 / 255, "pgd20": 20.0, "autoattack": None}]},
        "errors": {"transfer": "CheckpointError: not found"},
    }
    text = markdown(report)
    assert "| Clean | PGD-20 | AA | GD ↓ | GC ↑ | custom |\n|---|---|---|---|---|---|\n" \
           "| 80.00 | 45.25 | 41.50 | 0.200 | 0.612 | 3.000 |" in text
    assert "| ε | PGD-20 | AA |\n|---|---:|---:|\n| 8/255 | 40.00 | 35.00 |\n| 16/255 | 20.00 | – |" in text
    assert "## Metrics that failed\n\n- `transfer`: CheckpointError: not found" in text
    write_report(tmp_path, report)
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert (tmp_path / "report.md").read_text() == text


def test_one_row_per_checkpoint_the_reported_one_first_and_the_rule_in_words():
    report = {
        "name": "run", "n_examples": 10, "metrics": {"clean": 80.0, "pgd20": 40.0}, "errors": {},
        "checkpoint": {"name": "best", "path": "c/best.safetensors", "epoch": 7, "rule": "best",
                       "selected_by": {"metric": "pgd", "split": "val", "epoch": 7, "value": 42.5}},
        "checkpoints": {
            "last": {"epoch": 10, "rule": "last", "selected_by": None, "metrics": {"clean": 82.0, "pgd20": 38.0},
                     "errors": {"aa": "RuntimeError: x"}},
            "best": {"epoch": 7, "rule": "best", "metrics": {"clean": 80.0, "pgd20": 40.0}, "errors": {},
                     "selected_by": {"metric": "pgd", "split": "val", "epoch": 7, "value": 42.5}},
        },
    }
    text = markdown(report)
    assert ("- reported checkpoint: `best` (epoch 7), rule `best`: selected by the highest periodic pgd = 42.50 "
            "on the validation split (epoch 7)") in text
    assert ("| checkpoint | Clean | PGD-20 |\n|---|---|---|\n| **best** (epoch 7; val pgd 42.50; reported) | 80.00 | "
            "40.00 |\n| last (epoch 10) | 82.00 | 38.00 |") in text
    assert "- `aa` (checkpoint `last`): RuntimeError: x" in text
    report["checkpoint"] = {"name": "last", "epoch": 10, "rule": "last", "selected_by": None,
                            "note": "'best' was asked for, but the run has no checkpoints/best.safetensors"}
    text = markdown(report)
    assert "rule `last`: the weights after the final epoch, no selection — 'best' was asked for" in text
    assert "- also evaluated: `best` (epoch 7), selected by the highest periodic pgd = 42.50 on the validation" in text


def test_sanity_checks_listed_in_full_for_the_reported_checkpoint_and_by_flag_for_the_others():
    def checks(**statuses):
        return {"n": 100, "flagged": [k for k, v in statuses.items() if v == "flagged"], "seconds": 1.0,
                "results": {name: {"status": status, "message": f"{name} numbers" if status != "not run"
                                   else "not run: no teacher", "seconds": 0.1} for name, status in statuses.items()}}

    last = checks(ordering="passed", unbounded="flagged", black_box="not run")
    best = checks(ordering="flagged", unbounded="passed", black_box="passed")
    report = {
        "name": "run", "n_examples": 100, "metrics": {"clean": 80.0}, "errors": {}, "checks": last,
        "checkpoint": {"name": "last", "epoch": 4, "rule": "last", "selected_by": None},
        "checkpoints": {"last": {"epoch": 4, "metrics": {"clean": 80.0}, "errors": {}, "checks": last},
                        "best": {"epoch": 2, "metrics": {"clean": 79.0}, "errors": {}, "checks": best},
                        "old": {"epoch": 1, "metrics": {"clean": 79.0}, "errors": {}, "checks": best,
                                "same_weights_as": "best"}},
    }
    text = markdown(report)
    assert ("## Sanity checks\n\nCheckpoint `last`: **1 flagged**, 1 passed, 1 not run (the attack checks use the "
            "first 100 evaluated images; definitions and what to do: the advdistill documentation, \"Metrics\" page, "
            "\"Sanity checks\").\n\n"
            "- `ordering` passed: ordering numbers\n- `unbounded` **FLAGGED**: unbounded numbers\n"
            "- `black_box` not run: no teacher\n\n"
            "Checkpoint `best`: **1 flagged**, 2 passed.\n\n- `ordering` **FLAGGED**: ordering numbers\n\n"
            "Checkpoint `old`: the same weights as `best`, the same results.") in text
    del report["checks"]
    assert "Sanity checks" not in markdown(report)


def test_accuracies_have_two_decimals_whatever_their_size_other_values_three():
    info = {"clean": {"unit": "%"}, "pgd20": {"unit": "%"}, "gd": {"unit": None}, "gc": {"unit": None},
            "linearity_remainder": {"unit": None}}
    report = {"name": "run", "n_examples": 10, "metric_info": info,
              "metrics": {"clean": 0.5, "pgd20": 0.25, "gd": 0.0123, "gc": 0.612, "linearity_remainder": 0.00421}}
    text = markdown(report)
    assert "| Clean | PGD-20 | GD ↓ | GC ↑ | Taylor rem. |\n|---|---|---|---|---|\n" \
           "| 0.50 | 0.25 | 0.0123 | 0.612 | 0.00421 |" in text
    # reports from before metric_info: the built-in accuracies are still known as such
    del report["metric_info"]
    assert "| 0.50 | 0.25 | 0.0123 | 0.612 | 0.00421 |" in markdown(report)


def test_the_teacher_is_named():
    base = {"name": "run", "n_examples": 10, "metrics": {"clean": 80.0}}
    teacher = {"kind": "robustbench", "name": "Wang2023Better_WRN-28-10", "model_dir": "models"}
    assert "teacher: `robustbench` Wang2023Better_WRN-28-10, dataset" in markdown({**base, "teacher": teacher})
    own = {"kind": "checkpoint", "path": "runs/t/checkpoints/last.safetensors"}
    assert "teacher: `checkpoint` runs/t/checkpoints/last.safetensors" in markdown({**base, "teacher": own})
    assert "teacher: none" in markdown({**base, "teacher": None})


def test_report_md_names_the_documentation_instead_of_a_path_an_installed_package_lacks():
    checks = {"n": 100, "flagged": [], "seconds": 1.0, "results": {"ordering": {"status": "passed", "message": "ok"}}}
    report = {"name": "run", "n_examples": 10, "metrics": {"clean": 80.0, "gd": 0.2}, "checks": checks,
              "per_example": "per_example.safetensors"}
    text = markdown(report)
    assert "docs/" not in text
    assert "the advdistill documentation, \"Metrics\" page" in text
