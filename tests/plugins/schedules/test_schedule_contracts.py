"""Every registered schedule keeps the schedule contract (advdistill.testing.check_schedule)."""

import pytest

import advdistill as ad
from advdistill.testing import check_schedule

#: the fewest parameters each schedule needs (a new schedule must be added here)
PARAMS = {
    "constant": {"value": 0.5},
    "linear": {"end": 2.0},
    "step": {"value": 0.1, "milestones": [2, 4]},
    "cosine": {"start": 1.0, "end": 0.1, "unit": "step", "warmup_epochs": 2},
}


def test_every_schedule_is_covered():
    names = {i.name for i in ad.list_components("schedule") if i.package == "advdistill" and not i.alias_of}
    assert names == set(PARAMS)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_schedule_contract(name):
    values = check_schedule(ad.build("schedule", name, **PARAMS[name]), epochs=5, steps_per_epoch=3)
    assert len(values) == 15
