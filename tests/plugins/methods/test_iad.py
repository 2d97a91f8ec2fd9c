import pytest
import torch
from conftest import B
from objective_reference import assert_same_value_and_gradient, ce1, kl1, softmax1

import advdistill as ad
from advdistill.errors import RecipeError
from advdistill.testing import check_objective, check_objective_gradient


def trust(teacher, x_adv_i, label, beta):
    """A_i = p_T(y_i | x_adv_i)^β, a constant."""
    return float(softmax1(teacher(x_adv_i)[0])[label]) ** beta


def naive_iad1(student, teacher, x, x_adv, y, *, a=1.0, tau=1.0, beta=0.1, introspect=True):
    kd, intro, ce = 0.0, 0.0, 0.0
    for i in range(B):
        xi, xa, label = x[i : i + 1], x_adv[i : i + 1], int(y[i])
        s_nat, s_adv = student(xi)[0], student(xa)[0]
        kd = kd + kl1(softmax1(teacher(xi)[0], tau), softmax1(s_adv, tau))
        if introspect:
            intro = intro + (1 - trust(teacher, xa, label, beta)) * kl1(softmax1(s_nat), softmax1(s_adv))
        ce = ce + ce1(s_nat, label)
    return a * tau**2 * kd / B + a * intro / B + (1 - a) * ce / B


def naive_iad2(student, teacher, standard, x, x_adv, y, *, a=0.5, a2=0.25, tau=1.0, beta=0.1, introspect):
    ce, robust, intro, st = 0.0, 0.0, 0.0, 0.0
    for i in range(B):
        xi, xa, label = x[i : i + 1], x_adv[i : i + 1], int(y[i])
        s_adv = student(xa)[0]
        weight = trust(teacher, xa, label, beta) if introspect else 1.0
        ce = ce + ce1(s_adv, label)
        robust = robust + weight * kl1(softmax1(teacher(xa)[0], tau), softmax1(s_adv, tau))
        if introspect:  # no temperature in the self-introspection KL (official IAD-II.py)
            intro = intro + (1 - weight) * kl1(softmax1(student(xi)[0]), softmax1(s_adv))
        with torch.no_grad():
            p_st = softmax1(standard(xa)[0], tau)
        st = st + kl1(p_st, softmax1(s_adv, tau))
    return (1 - a - a2) * ce / B + a * tau**2 * (robust + intro) / B + a2 * tau**2 * st / B


@pytest.mark.parametrize("epoch,introspect", [(2, False), (3, True)])
def test_iad1_matches_naive_before_and_after_begin(models, data, make_context, epoch, introspect):
    """begin = 2 completed epochs: our epoch 2 is the official epoch index 1 (< 2), epoch 3 is index 2."""
    student, teacher = models
    x, x_adv, y = data
    iad = ad.build("objective", "iad", begin=2)
    assert iad.introspecting(make_context(epoch=epoch).progress) is introspect
    ours = check_objective(iad, make_context(epoch=epoch))
    reference = naive_iad1(student, teacher, x, x_adv, y, introspect=introspect)
    assert_same_value_and_gradient(ours, reference, student)


def test_iad1_with_temperature_and_clean_ce(models, data, make_context):
    student, teacher = models
    x, x_adv, y = data
    iad = ad.build("objective", "iad", begin=0, alpha=0.8, temperature=3.0, beta=0.5)
    ours = iad(make_context(epoch=1))
    reference = naive_iad1(student, teacher, x, x_adv, y, a=0.8, tau=3.0, beta=0.5)
    assert_same_value_and_gradient(ours, reference, student)


def test_iad_default_begin_counts_epochs_from_zero_like_the_official_loop(make_context):
    """Official: `for epoch in range(E)` ... `if epoch >= 60`: the 61st epoch is the first to introspect."""
    iad = ad.build("objective", "iad")
    assert iad.config.begin == 60
    assert not iad.introspecting(make_context(epoch=60, epochs=200).progress)
    assert iad.introspecting(make_context(epoch=61, epochs=200).progress)
    table = {"kind": "checkpoint", "path": "x"}
    assert ad.build("objective", "iad", form="II", standard_teacher=table).config.begin == 40


@pytest.fixture
def standard_teacher(tmp_path):
    """A saved small CNN as IAD-II's standard teacher, and its table."""
    from advdistill.engine.checkpoint import save_weights

    torch.manual_seed(5)
    arch = {"kind": "small_cnn", "widths": [2], "hidden": 4}
    model = ad.create_model("small_cnn", num_classes=4, in_chans=1, widths=[2], hidden=4).eval()
    path = tmp_path / "standard.safetensors"
    save_weights(path, model)
    return model, {"kind": "checkpoint", "path": str(path), "model": arch}


@pytest.mark.parametrize("epoch,introspect", [(40, False), (41, True)])
def test_iad2_matches_naive(models, data, make_context, standard_teacher, epoch, introspect):
    student, teacher = models
    x, x_adv, y = data
    standard, table = standard_teacher
    iad = ad.build("objective", "iad", form="II", standard_teacher=table, temperature=2.0)
    progress = make_context().progress
    assert iad.config.alpha(progress) == 0.5 and iad.config.alpha2(progress) == 0.25
    ours = check_objective(iad, make_context(epoch=epoch, epochs=100))
    reference = naive_iad2(student, teacher, standard, x, x_adv, y, tau=2.0, introspect=introspect)
    assert_same_value_and_gradient(ours, reference, student)


def test_iad2_loads_the_standard_teacher_once(make_context, standard_teacher):
    _, table = standard_teacher
    iad = ad.build("objective", "iad", form="II", standard_teacher=table)
    iad(make_context())
    loaded = iad.standard_teacher(make_context())
    iad(make_context())
    assert iad.standard_teacher(make_context()) is loaded
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_iad_gradients_match_finite_differences(make_context, standard_teacher):
    _, table = standard_teacher
    check_objective_gradient(ad.build("objective", "iad", begin=0, alpha=0.7), make_context)
    iad2 = ad.build("objective", "iad", form="II", standard_teacher=table, begin=0)
    check_objective_gradient(iad2, make_context)


@pytest.mark.parametrize(
    "params,match",
    [({"form": "II"}, "needs a standard"),
     ({"standard_teacher": {"kind": "checkpoint", "path": "x"}}, 'form = "II" only'),
     ({"alpha2": 0.3}, "alpha2"),
     ({"form": "II", "standard_teacher": {"kind": "chekpoint", "path": "x"}}, "Did you mean 'checkpoint'"),
     ({"form": "II", "standard_teacher": {"kind": "checkpoint"}}, "missing required key.*path"),
     ({"form": "III"}, "must be one of")],
)
def test_iad_config_errors_are_clear(params, match):
    with pytest.raises(RecipeError, match=match):
        ad.build("objective", "iad", **params)


def test_iad_config_round_trips_through_json():
    from advdistill.config import build_config, config_to_dict
    from advdistill_plugins.methods.iad import IAD

    table = {"kind": "checkpoint", "path": "runs/st/checkpoints/best.safetensors"}
    config = build_config(IAD, {"form": "II", "standard_teacher": table}, where="test")
    again = build_config(IAD, config_to_dict(config), where="test")
    assert config_to_dict(again) == config_to_dict(config)
    assert config_to_dict(again)["standard_teacher"] == table
