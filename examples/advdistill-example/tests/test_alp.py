"""The example plugin, tested with advdistill's own pytest plugin (fixtures + contract checks)."""

from pathlib import Path

import pytest

import advdistill as ad
from advdistill.testing import check_objective, check_objective_gradient, surface_violations


def test_alp_is_discovered_through_its_entry_point():
    info = next(i for i in ad.list_components("aux") if i.name == "alp")
    assert info.package == "advdistill-example" and info.plugin == "alp"


def test_alp_matches_a_direct_computation(tiny_step):
    loss = check_objective(ad.build("aux", "alp", weight=0.25), tiny_step.context())
    # the step context runs the student once per point (train-mode BatchNorm never mixes them): so do we
    adv, clean = tiny_step.student(tiny_step.x_adv), tiny_step.student(tiny_step.x)
    expected = 0.25 * sum(((a - c) ** 2).sum() for a, c in zip(adv, clean)) / adv.numel()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_alp_gradient_is_autograds(tiny_step):
    check_objective_gradient(ad.build("aux", "alp", weight=0.25), tiny_step.context)


def test_the_weight_follows_its_schedule(tiny_step):
    alp = ad.build("aux", "alp", weight={"kind": "linear", "end": 0.5})
    first, last = alp(tiny_step.context(epoch=1, epochs=5)), alp(tiny_step.context(epoch=5, epochs=5))
    assert last.item() == pytest.approx(5 * first.item(), rel=1e-5)


def test_the_plugin_imports_only_advdistills_plugin_surface():
    assert surface_violations(Path(__file__).resolve().parents[1]) == []


def test_alp_in_a_training_run(tiny_recipe, tmp_path):
    recipe = tiny_recipe(aux={"alp": {"kind": "alp", "weight": {"kind": "linear", "end": 0.5}}})
    run = ad.train(recipe, tmp_path / "run")
    assert (run / "report.json").exists()
