"""Every registered attack keeps the attack contract (advdistill.testing.check_attack), with the
student in train and in eval mode: in the ball and [0, 1], detached, seeded, nothing else touched."""

import pytest

import advdistill as ad
from advdistill.testing import check_attack


def attacks():
    return sorted(i.name for i in ad.list_components("attack") if i.package == "advdistill" and not i.alias_of)


def test_the_attacks_are_discovered():
    assert {"pgd", "vmi_fgsm", "trades_kl", "mart", "rslad_kl", "adaad_kl"} <= set(attacks())


@pytest.mark.parametrize("train_mode", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", attacks())
def test_attack_contract(name, train_mode, tiny_step):
    attack = ad.build("attack", name, steps=2)
    student = tiny_step.student.train(train_mode)
    check_attack(attack, student, tiny_step.x, tiny_step.y, teacher=tiny_step.teacher)
