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
           "| 80.00 | 45.25 | 41.50 | 0.200 | 0.612 | 3.00 |" in text
    assert "| ε (/255) | PGD-20 | AA |\n|---|---:|---:|\n| 8 | 40.00 | 35.00 |\n| 16 | 20.00 | – |" in text
    assert "## Metrics that failed\n\n- `transfer`: CheckpointError: not found" in text
    write_report(tmp_path, report)
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert (tmp_path / "report.md").read_text() == text
