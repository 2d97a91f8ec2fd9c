"""The figures: valid PNG files, least-squares lines, linearity read from metrics.jsonl."""

import json

import numpy as np
import pytest

from advdistill.evaluation import plots

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path):
    data = path.read_bytes()
    return data.startswith(PNG) and len(data) > 2000


def test_least_squares_matches_numpy():
    x, y = [0.1, 0.4, 0.35, 0.8], [30.0, 27.5, 28.0, 24.0]
    slope, intercept = plots.least_squares(x, y)
    assert (slope, intercept) == pytest.approx(tuple(np.polyfit(x, y, 1)))
    assert plots.least_squares([1.0], [2.0]) is None
    assert plots.least_squares([1.0, 1.0], [2.0, 3.0]) is None


def test_eps_curve_plot(tmp_path):
    curve = [{"eps": e / 255, "pgd20": 50 - e, "autoattack": 45 - e} for e in (8, 12, 16)]
    no_aa = [{"eps": e / 255, "pgd20": 40 - e, "autoattack": None} for e in (8, 16)]
    path = plots.plot_eps_curve({"a": curve, "b": no_aa}, tmp_path / "plots" / "eps_curve.png")
    assert is_png(path)


def test_linearity_series_from_metrics_jsonl(tmp_path):
    lines = [{"event": "step", "epoch": 1, "loss": 1.0}, {"event": "epoch", "epoch": 1, "linearity": 0.02},
             {"event": "epoch", "epoch": 2}, {"event": "epoch", "epoch": 3, "linearity": 0.03}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    series = plots.read_linearity(tmp_path / "metrics.jsonl")
    assert series == [(1, 0.02), (3, 0.03)]
    assert plots.read_linearity(tmp_path / "missing.jsonl") == []
    assert is_png(plots.plot_linearity({"run": series}, tmp_path / "lin.png"))


def test_gd_gc_scatter(tmp_path):
    points = [{"label": f"m{i}", "gd": 0.1 + i / 10, "gc": 0.8 - i / 10, "autoattack": 30 - i}
              for i in range(4)]
    assert is_png(plots.plot_gd_gc_vs_accuracy(points, tmp_path / "s.png"))
    assert is_png(plots.plot_gd_gc_vs_accuracy(points[:1], tmp_path / "one.png"))  # no line for one point


def test_write_run_plots_draws_what_the_data_allows(tmp_path):
    report = {"name": "r", "metrics": {"clean": 80.0}}
    assert plots.write_run_plots(tmp_path, report, tmp_path) == []
    report["metrics"]["eps_curve"] = [{"eps": 8 / 255, "pgd20": 40.0, "autoattack": 35.0}]
    record = {"event": "epoch", "epoch": 1, "train_loss": 2.0, "linearity": 0.1}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    written = plots.write_run_plots(tmp_path, report, tmp_path)
    assert [p.name for p in written] == ["eps_curve.png", "training.png", "linearity.png"]
    assert all(is_png(p) for p in written) and all(p.parent == tmp_path / "plots" for p in written)


def test_read_linearity_tolerates_a_torn_last_line(tmp_path):
    from advdistill.evaluation.plots import read_linearity

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"event": "epoch", "epoch": 1, "linearity": 0.5}\n{"event": "epoch", "epoch": 2, "linea')
    assert read_linearity(path) == [(1, 0.5)]


def test_a_trained_run_has_plots_after_training(tiny_recipe, tmp_path):
    """The README's promise: plots/ in the run directory after training (its end-of-training evaluation)."""
    import advdistill as ad

    run = ad.train(tiny_recipe(), tmp_path / "run")
    report = json.loads((run / "report.json").read_text())
    assert report["plots"] == ["plots/training.png"] and is_png(run / "plots" / "training.png")


def test_training_curves_with_and_without_a_periodic_evaluation(tmp_path):
    epochs = [{"event": "epoch", "epoch": e, "train_loss": 2.0 / e, "eval": {"clean": 50 + e, "pgd": 20 + e},
               "best": e == 2} for e in (1, 2, 3)]
    assert is_png(plots.plot_training(epochs, tmp_path / "with.png"))
    assert is_png(plots.plot_training([{"epoch": 1, "train_loss": 1.0}], tmp_path / "without.png"))
