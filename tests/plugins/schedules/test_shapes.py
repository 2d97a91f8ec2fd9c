import pytest

import advdistill as ad
from advdistill.config import ScheduledValue
from advdistill.errors import RecipeError
from advdistill.interfaces import Progress


def at(schedule, epoch, epochs=10, step=0, steps=1):
    return schedule(Progress(epoch=epoch, epochs=epochs, step_in_epoch=step, steps_per_epoch=steps))


def test_linear_counts_epochs_from_one():
    s = ad.build("schedule", "linear", end=20)
    assert [at(s, e, 200) for e in (1, 100, 200)] == [pytest.approx(0.1), pytest.approx(10.0), 20.0]


def test_step_matches_multisteplr():
    import torch

    s = ad.build("schedule", "step", value=0.1, milestones=[2, 4], gamma=0.1)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.1)
    for epoch in range(1, 7):
        assert at(s, epoch) == pytest.approx(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()


def test_step_unit_steps_at_epoch_boundaries():
    s = ad.build("schedule", "step", value=1.0, milestones=[1], gamma=0.5, unit="step")
    assert at(s, 1, step=3, steps=4) == 1.0
    assert at(s, 2, step=0, steps=4) == 0.5


def test_cosine_and_warmup():
    c = ad.build("schedule", "cosine", start=1.0, end=0.0)
    assert at(c, 1) == 1.0 and at(c, 6) == pytest.approx(0.5)
    w = ad.build("schedule", "constant", value=1.0, warmup_epochs=4)
    assert [at(w, e) for e in (1, 2, 4, 5)] == [0.25, 0.5, 1.0, 1.0]


def test_scheduled_value_accepts_numbers_fractions_and_tables():
    assert ScheduledValue.from_value("8/255").to_json() == pytest.approx(8 / 255)
    sv = ScheduledValue.from_value({"kind": "linear", "end": 4})
    assert sv.to_json()["kind"] == "linear" and at(sv, 5) == 2.0
    with pytest.raises(RecipeError, match=r"unknown key 'ned'.*'end'"):
        ScheduledValue.from_value({"kind": "linear", "ned": 4})
    with pytest.raises(ValueError, match="needs kind"):
        ScheduledValue.from_value({"end": 4})
