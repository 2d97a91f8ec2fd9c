"""Every registered step extension keeps the step-extension contract (advdistill.testing.check_step_extension):
weights back where they were at a zero learning rate, x_adv, modes, buffers and the global RNG untouched."""

import pytest

import advdistill as ad
from advdistill.testing import check_step_extension

#: parameters with which each built-in step extension acts from the first step (a new one must be added here)
EXTENSIONS = {"awp": {"gamma": 0.05}}


def test_every_step_extension_is_covered():
    names = {i.name for i in ad.list_components("step_extension") if i.package == "advdistill" and not i.alias_of}
    assert names == set(EXTENSIONS)


@pytest.mark.parametrize("name", sorted(EXTENSIONS))
def test_step_extension_contract(name, tiny_step):
    check_step_extension(ad.build("step_extension", name, **EXTENSIONS[name]), tiny_step.context(), steps=3)
