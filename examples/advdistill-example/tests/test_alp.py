"""The example plugin, tested with advdistill's own pytest plugin (fixtures + contract checks)."""

import pytest
import torch

import advdistill as ad
from advdistill.context import StepContext
from advdistill.interfaces import Progress
from advdistill.testing import check_objective


def test_alp_is_discovered_through_its_entry_point():
    info = next(i for i in ad.list_components("aux") if i.name == "alp")
    assert info.package == "advdistill-example" and info.plugin == "alp"


def test_alp_matches_a_direct_computation():
    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x = torch.rand(4, 1, 3, 4)
    x_adv = (x + 0.05).clamp(0, 1)
    ctx = StepContext(x, torch.zeros(4, dtype=torch.long), student=student, teacher=None,
                      progress=Progress(epoch=1, epochs=1))
    ctx.set_adversarial(x_adv)
    loss = check_objective(ad.build("aux", "alp", weight=0.25), ctx)
    expected = 0.25 * sum(((student(x_adv[i:i + 1]) - student(x[i:i + 1])) ** 2).sum() for i in range(4)) / 12
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_alp_in_a_training_run(tiny_recipe, tmp_path):
    recipe = tiny_recipe(aux={"alp": {"kind": "alp", "weight": {"kind": "linear", "end": 0.5}}})
    run = ad.train(recipe, tmp_path / "run")
    assert (run / "report.json").exists()
