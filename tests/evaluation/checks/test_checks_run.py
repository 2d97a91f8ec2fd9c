"""run_checks: every check in order, the settings honoured, failures and flags never silent, the
model's modes and gradient flags restored."""

import logging

import torch
from check_models import Linear, Rounded, make_data, make_inputs

import advdistill as ad
from advdistill.evaluation import checks
from advdistill.evaluation.checks import run_checks
from advdistill.recipe.schema import CHECK_NAMES, ChecksConfig


def run(model, config, teacher=None):
    inputs = make_inputs(model, make_data(), teacher=teacher)
    return run_checks(inputs.ctx, inputs.metrics, inputs.values, inputs.records, config, threats=inputs.threats)


QUICK = dict(n=16, square_queries=10)


def test_a_healthy_model_passes_every_check():
    out = run(Linear().eval(), ChecksConfig(**QUICK))
    assert list(out["results"]) == list(CHECK_NAMES)
    assert out["flagged"] == [] and out["n"] == 16
    assert {r["status"] for r in out["results"].values()} == {"passed"}, out["results"]
    assert all(r["seconds"] >= 0 for r in out["results"].values())


def test_a_model_with_zero_gradients_is_flagged_and_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="advdistill.evaluation.checks"):
        out = run(Rounded().eval(), ChecksConfig(**QUICK))
    assert {"unbounded", "zero_gradient"} <= set(out["flagged"])
    assert "sanity check 'zero_gradient' flagged: 16 of the first 16 images" in caplog.text


def test_skipped_checks_do_not_run():
    out = run(Linear().eval(), ChecksConfig(skip=("more_steps", "black_box"), **QUICK))
    assert list(out["results"]) == [n for n in CHECK_NAMES if n not in ("more_steps", "black_box")]


def test_a_check_that_raises_is_reported_not_run_and_the_others_still_run(monkeypatch, caplog):
    def broken(inputs):
        raise ValueError("exploded on purpose")

    monkeypatch.setitem(checks.CHECKS, "logits", broken)
    with caplog.at_level(logging.WARNING, logger="advdistill.evaluation.checks"):
        out = run(Linear().eval(), ChecksConfig(**QUICK))
    assert out["results"]["logits"]["status"] == "not run"
    assert out["results"]["logits"]["message"] == "not run: error: ValueError: exploded on purpose"
    assert out["results"]["inference_gradients"]["status"] == "passed"
    assert "could not run" in caplog.text


def test_modes_and_gradient_flags_are_restored():
    model = ad.create_model("small_cnn", num_classes=4, in_chans=1, widths=[4], hidden=8)
    model.train()
    model.head[1].requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    teacher = Linear().eval()
    inputs = make_inputs(model, make_data(), teacher=teacher)
    model.train()  # make_inputs' run_metrics restored train mode already; the checks must too
    run_checks(inputs.ctx, inputs.metrics, inputs.values, inputs.records, ChecksConfig(**QUICK), threats=inputs.threats)
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in teacher.parameters())


def test_results_are_plain_json():
    import json

    out = run(Rounded().eval(), ChecksConfig(black_box="both", **QUICK), teacher=Linear().eval())
    assert json.loads(json.dumps(out)) == out
    assert not any(isinstance(v, torch.Tensor) for r in out["results"].values() for v in r.values())
