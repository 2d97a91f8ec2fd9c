"""Every registered objective and aux loss keeps the loss contract (advdistill.testing.check_objective)
and has the gradient autograd says (check_objective_gradient), on advdistill.testing's tiny step."""

import pytest

import advdistill as ad
from advdistill.testing import check_objective, check_objective_gradient

#: finite-difference steps other than 1e-3: the step context computes logits in float32, and ARD's
#: τ² = 900 (official τ = 30) amplifies their roundoff beyond the difference a 1e-3 step makes
STEPS = {"ard": 1e-2}


def losses():
    return sorted((i.kind, i.name) for kind in ("objective", "aux") for i in ad.list_components(kind)
                  if i.package == "advdistill" and not i.alias_of)


def test_the_losses_are_discovered():
    assert {("objective", "pgd_at"), ("objective", "rslad"), ("aux", "igdm")} <= set(losses())


@pytest.mark.parametrize(("kind", "name"), losses())
def test_loss_contract(kind, name, tiny_step):
    loss = ad.build(kind, name)

    def late_step():  # the last epoch: schedules at their end, IAD's introspection on
        return tiny_step.context(epoch=100, epochs=100)

    check_objective(loss, late_step())
    check_objective_gradient(loss, late_step, step=STEPS.get(name, 1e-3))
