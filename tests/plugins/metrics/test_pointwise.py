"""Point-wise alignment ‖f_T(x+δ) − f_S(x+δ)‖₂ against per-example loops."""

import pytest
import torch

import advdistill as ad
from advdistill.errors import RecipeError
from advdistill_plugins.metrics.common import uniform_perturbation


def per_example_distance(student, teacher, points):
    with torch.no_grad():
        return [torch.sqrt(((teacher(p[None]) - student(p[None])) ** 2).sum()).item() for p in points]


def test_the_three_distances_match_a_loop(make_ctx, model, teacher):
    ctx = make_ctx(seed=2)
    result = ad.build("metric", "pointwise", adv_steps=3).evaluate(ctx)
    attack = ad.build("attack", "pgd", steps=3)  # no recipe: PGD Linf 8/255, step 2/255
    uniform_gen, attack_gen = ctx.generator(stream=3), ctx.generator(stream=4)
    zero, uniform, adv = [], [], []
    for x, y in ctx.batches():
        x_adv = attack.perturb(model, x, y, generator=attack_gen)
        x_uniform = x + uniform_perturbation(x, 8 / 255, uniform_gen)
        zero += per_example_distance(model, teacher, x)
        uniform += per_example_distance(model, teacher, x_uniform)
        adv += per_example_distance(model, teacher, x_adv)
    expected = {"pointwise_zero": zero, "pointwise_uniform": uniform, "pointwise_adv": adv}
    for key, values in expected.items():
        assert result[key] == pytest.approx(sum(values) / len(values), rel=1e-5), key
    assert result["pointwise_zero"] != result["pointwise_uniform"] != result["pointwise_adv"]


def test_the_recipes_inner_attack_is_used_with_20_steps(tiny_recipe, tmp_path):
    teacher_run = ad.train(tiny_recipe("teacher.toml"), tmp_path / "t")
    recipe = ad.load_recipe(tiny_recipe(
        attack={"kind": "rslad_kl", "steps": 2, "eps": "4/255"}, objective={"kind": "rslad"},
        teacher={"kind": "checkpoint", "path": str(teacher_run / "checkpoints" / "last.safetensors")},
    ))
    adversary = ad.build("metric", "pointwise").adversary(recipe)
    assert type(adversary).__name__ == "RSLADInner" and adversary.requires_teacher
    assert adversary.config.steps == 20 and adversary.config.eps == pytest.approx(4 / 255)
    # the method's attack needs the teacher: the metric passes it (as training does)
    report = ad.evaluate(ad.create_model("small_cnn", num_classes=4, in_chans=1, widths=[4], hidden=8),
                         recipe=recipe, metrics=["pointwise"], limit=8, show_progress=False)
    assert report["errors"] == {} and report["metrics"]["pointwise_adv"] > 0


def test_an_attack_table_overrides_the_recipe():
    metric = ad.build("metric", "pointwise", attack={"kind": "pgd", "norm": "l2", "eps": 0.5})
    adversary = metric.adversary(recipe=None)
    assert adversary.config.norm == "l2" and adversary.config.steps == 20
    assert ad.build("metric", "pointwise", adv_steps=5).adversary(None).config.steps == 5


@pytest.mark.parametrize("table,message", [
    ({"steps": 3}, "expected a table naming a registered attack"),
    ({"kind": "pgdd"}, "Did you mean 'pgd'"),
    ({"kind": "pgd", "stepz": 3}, "Did you mean 'steps'"),
])
def test_a_bad_attack_table_names_the_key(table, message):
    with pytest.raises(RecipeError, match=message) as info:
        ad.build("metric", "pointwise", attack=table)
    assert "attack" in str(info.value)


def test_needs_a_teacher(make_ctx, images, labels, model):
    from advdistill.evaluation.runner import run_metrics

    _, errors, _ = run_metrics(model, images, labels, {"pw": ad.build("metric", "pointwise")},
                               device=torch.device("cpu"), show_progress=False)
    assert "needs a teacher" in errors["pw"]
