"""The ε-curve: the PGD and AutoAttack metrics evaluated at each radius."""

import sys

import pytest

import advdistill as ad
from advdistill.errors import RecipeError

AA = {"version": "custom", "attacks": ["apgd-ce"], "n_iter": 5, "n_restarts": 1, "backend": "pyautoattack"}


def test_each_point_is_the_pgd_and_autoattack_metric_at_that_radius(make_ctx, monkeypatch):
    monkeypatch.setitem(sys.modules, "autoattack", None)
    ctx = make_ctx(seed=2)
    curve = ad.build("metric", "eps_curve", eps=["1/255", "4/255"], steps=5, step_size="1/255",
                     autoattack=AA).evaluate(ctx)["eps_curve"]
    assert [p["eps"] for p in curve] == [pytest.approx(1 / 255), pytest.approx(4 / 255)]
    for point in curve:
        pgd = ad.build("metric", "pgd", eps=point["eps"], step_size="1/255", steps=5).evaluate(ctx)["pgd5"]
        aa = ad.build("metric", "autoattack", eps=point["eps"], **AA).evaluate(ctx)["autoattack"]
        assert point == {"eps": point["eps"], "pgd5": pgd, "autoattack": aa}
    assert curve[0]["pgd5"] >= curve[1]["pgd5"]


def test_defaults_are_the_papers_figure_5():
    cfg = ad.build("metric", "eps_curve").config
    assert [round(e * 255) for e in cfg.eps] == [8, 10, 12, 14, 16]
    assert cfg.steps == 20 and cfg.step_size == pytest.approx(2 / 255) and cfg.autoattack == {}


def test_without_autoattack_the_entry_is_null(make_ctx):
    curve = ad.build("metric", "eps_curve", eps=[0.01], steps=2, autoattack=False).evaluate(make_ctx())
    point = curve["eps_curve"][0]
    assert point["autoattack"] is None and set(point) == {"eps", "pgd2", "autoattack"}


@pytest.mark.parametrize("params,message", [
    ({"autoattack": {"eps": 0.1}}, "set per point"),
    ({"autoattack": {"version": "custom"}}, "needs attacks"),
    ({"autoattack": {"n_iterz": 3}}, "Did you mean 'n_iter'"),
    ({"eps": []}, "at least one radius"),
    ({"eps": [0.1, -1]}, "eps"),
])
def test_bad_settings_are_refused(params, message):
    with pytest.raises(RecipeError, match=message):
        ad.build("metric", "eps_curve", **params)
