"""Checks that attack again: ``more_steps``, ``unbounded``, ``black_box`` — each passes on a healthy
linear model and flags a weak attack or a model whose input gradient is zero (rounded input)."""

import pytest
import torch
from check_models import Linear, Rounded, make_data, make_inputs

import advdistill as ad
from advdistill.evaluation.checks.attacks import (
    check_black_box,
    check_more_steps,
    check_unbounded,
    clean_correct,
    robust_flags,
)


def metrics(**pgd):
    return {"clean": ad.build("metric", "clean"), "pgd": ad.build("metric", "pgd", **pgd)}


def test_robust_flags_attack_only_correct_images_and_agree_with_the_pgd_metric():
    model = Linear().eval()
    images, labels = make_data()
    labels = labels.clone()
    labels[:5] = (labels[:5] + 1) % 4  # five misclassified images
    inputs = make_inputs(model, (images, labels), metrics=metrics(steps=10, random_start=False))
    attack = ad.build("attack", "pgd", eps="8/255", step_size="2/255", steps=10, start="none")
    flags = robust_flags(inputs.ctx, attack)
    assert clean_correct(inputs.ctx).tolist() == [False] * 5 + [True] * 43
    assert not flags[:5].any()
    # without a random start the attack is deterministic: the metric's own per-image result
    assert torch.equal(flags, inputs.records["pgd10"])


def test_more_steps_passes_when_pgd_has_converged():
    result = check_more_steps(make_inputs(Linear().eval(), make_data(), metrics=metrics(steps=10)))
    assert result.status == "passed", result.message
    details = result.values["results"]["pgd10"]
    assert (details["attack"], details["steps"], details["flagged"]) == ("PGD-50", 50, False)
    assert result.values["smallest_flagged_drop"] == pytest.approx(100 * 5 / 48)


def test_more_steps_flags_a_pgd_that_has_not_converged():
    weak = metrics(eps="16/255", steps=1, step_size="0.5/255", random_start=False)
    result = check_more_steps(make_inputs(Linear().eval(), make_data(), metrics=weak, steps_factor=40, restarts=2))
    assert result.status == "flagged"
    details = result.values["results"]["pgd1"]
    assert details["attack"] == "PGD-40 ×2 restarts" and details["restarts"] == 2
    assert details["reference_accuracy"] == 100.0 and details["drop"] > 50
    assert details["only_other"] == 0 and details["p_value"] < 1e-6
    assert "drop" in result.message and "PGD number overestimates robustness" in result.message


def test_more_steps_not_run_without_a_pgd_metric():
    inputs = make_inputs(Linear().eval(), make_data(), metrics={"clean": ad.build("metric", "clean")})
    result = check_more_steps(inputs)
    assert result.status == "not run" and "no PGD metric" in result.message


def test_unbounded_attack_breaks_every_image_of_a_healthy_model():
    result = check_unbounded(make_inputs(Linear().eval(), make_data()))
    assert result.status == "passed", result.message
    assert result.values["accuracy"] == 0.0 and result.values["step_size"] == pytest.approx(0.25)


def test_unbounded_attack_cannot_move_a_model_with_zero_gradients():
    result = check_unbounded(make_inputs(Rounded().eval(), make_data()))
    assert result.status == "flagged"
    assert result.values["accuracy"] > 50  # no step moves the images: clean accuracy stays
    assert "masked gradients" in result.message


MASKED_PGD = dict(eps=0.3, steps=10, step_size=0.05, random_start=False)


def test_black_box_attacks_do_not_beat_white_box_on_a_healthy_model():
    inputs = make_inputs(Linear().eval(), make_data(), metrics=metrics(eps=0.1, steps=10, step_size=0.025),
                         teacher=Linear().eval(), black_box="both", square_queries=50)
    result = check_black_box(inputs)
    assert result.status == "passed", result.message
    assert set(result.values["results"]) == {"square", "transfer_from_teacher"}
    assert result.values["results"]["square"]["drop"] <= 0


def test_black_box_attacks_beat_white_box_on_a_model_with_zero_gradients():
    inputs = make_inputs(Rounded().eval(), make_data(), metrics=metrics(**MASKED_PGD), teacher=Linear().eval(),
                         black_box="both", square_queries=50)
    result = check_black_box(inputs)
    assert result.status == "flagged"
    for name in ("square", "transfer_from_teacher"):
        details = result.values["results"][name]
        assert details["flagged"] and details["drop"] > 50 and details["p_value"] < 1e-6
    assert "gradient masking" in result.message


@pytest.mark.parametrize(("choice", "teacher", "expected"), [
    ("auto", True, {"transfer_from_teacher"}), ("auto", False, {"square"}), ("square", True, {"square"})])
def test_black_box_auto_uses_the_teacher_when_there_is_one(choice, teacher, expected):
    inputs = make_inputs(Linear().eval(), make_data(), metrics=metrics(steps=5), black_box=choice,
                         teacher=Linear(seed=3).eval() if teacher else None, square_queries=20, n=16)
    assert set(check_black_box(inputs).values["results"]) == expected


def test_black_box_says_what_did_not_run():
    inputs = make_inputs(Linear().eval(), make_data(), metrics=metrics(steps=5), black_box="transfer", n=16)
    result = check_black_box(inputs)
    assert result.status == "not run" and "the recipe has no teacher" in result.message
    l1 = make_inputs(Linear().eval(), make_data(), metrics={"pgd": ad.build("metric", "pgd_l1", steps=2)},
                     black_box="square", n=16)
    assert "Square has no l1 version" in check_black_box(l1).message
    none = make_inputs(Linear().eval(), make_data(), metrics={"clean": ad.build("metric", "clean")})
    assert check_black_box(none).message.startswith("not run: no PGD or AutoAttack result")
