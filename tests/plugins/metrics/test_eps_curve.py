"""The ε-curve: PGD and AutoAttack per radius, each radius attacking only the survivors of the
previous one (PGD from the adversarial points it reached there), radii defaulting to multiples of
the run's ε."""

import itertools
import sys
from types import SimpleNamespace

import pytest
import torch

import advdistill as ad
from advdistill.errors import RecipeError
from advdistill_plugins.metrics.autoattack import AutoAttackMetric

AA = {"version": "custom", "attacks": ["apgd-ce"], "n_iter": 5, "n_restarts": 1, "backend": "pyautoattack"}


def run_recipe(eps, norm="linf"):
    """What the metrics read of a recipe: its [attack] (the run's threat model)."""
    return SimpleNamespace(attack=SimpleNamespace(config=SimpleNamespace(eps=eps, norm=norm)))


class CountingModel(torch.nn.Module):
    """The model, counting the images each forward pass sees."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, x):
        self.seen.append(int(x.shape[0]))
        return self.model(x)


def naive_curve(ctx, radii, *, steps, step_size):
    """A second implementation: every image attacked at every radius (the broken ones too), PGD
    from the previous radius's adversarial point; robust at a radius = robust at every smaller one
    and surviving this one. The test images must all be classified correctly (then the first
    radius draws the same random starts as the metric)."""
    generator = ctx.generator(stream=7)
    x_all, y_all = ctx.tensors()
    previous, alive, flags = None, torch.ones_like(y_all, dtype=torch.bool), []
    for eps in radii:
        attack = ad.build("attack", "pgd", eps=eps, step_size=step_size, steps=steps)
        reached = []
        for start in range(0, len(y_all), ctx.batch_size):
            x, y = x_all[start:start + ctx.batch_size], y_all[start:start + ctx.batch_size]
            warm = previous[start:start + ctx.batch_size] if previous is not None else None
            x_adv = attack.perturb(ctx.model, x, y, generator=generator, x_start=warm)
            reached.append(x_adv)
            with torch.no_grad():
                alive[start:start + ctx.batch_size] &= ctx.model(x_adv).argmax(1) == y
        previous = torch.cat(reached)
        flags.append(alive.clone())
    return flags


def test_pgd_points_equal_a_naive_curve_that_attacks_every_image(make_ctx, model):
    """Skipping the images broken at a smaller radius changes no number (they stay broken), and the
    warm starts are the previous radius's adversarial points."""
    ctx = make_ctx(seed=2)
    assert ctx.labels.eq(model(ctx.tensors()[0]).argmax(1)).all()  # the fixture: clean accuracy 100 %
    radii = [1 / 255, 3 / 255, 6 / 255, 12 / 255]
    curve = ad.build("metric", "eps_curve", eps=radii, steps=4, step_size="1/255", autoattack=False).evaluate(ctx)
    expected = naive_curve(make_ctx(seed=2), radii, steps=4, step_size=1 / 255)
    for point, flags, eps in zip(curve["eps_curve"], expected, radii):
        assert point["eps"] == eps and point["pgd4"] == pytest.approx(100.0 * flags.float().mean().item())
        assert torch.equal(ctx.records[f"eps_curve@{eps:.6g}/pgd4"], flags)
    accuracies = [p["pgd4"] for p in curve["eps_curve"]]
    assert accuracies[0] > accuracies[-1], "choose radii where the curve falls"


def test_each_radius_attacks_only_the_survivors_of_the_previous_one(make_ctx, model, monkeypatch):
    monkeypatch.setitem(sys.modules, "autoattack", None)
    radii, steps = [1 / 255, 4 / 255, 8 / 255, 16 / 255], 3
    # PGD: one clean pass over every image, then (steps + 1) forwards of the survivors at each radius
    counting = CountingModel(model)
    ctx = make_ctx(seed=1, model=counting)
    curve = ad.build("metric", "eps_curve", eps=radii, steps=steps, step_size="1/255", autoattack=False).evaluate(ctx)
    n = ctx.n_examples
    alive = [n] + [round(p["pgd3"] * n / 100) for p in curve["eps_curve"]]
    assert sum(counting.seen) == n + (steps + 1) * sum(alive[:-1])
    assert alive[-2] < n, "choose radii where PGD breaks images before the last radius"
    # AutoAttack: run on the images robust at the previous radius only
    attacked = []
    robust_flags = AutoAttackMetric.robust_flags

    def spy(self, survivors, threat=None):
        attacked.append((threat.eps, survivors.n_examples))
        return robust_flags(self, survivors, threat)

    monkeypatch.setattr(AutoAttackMetric, "robust_flags", spy)
    curve = ad.build("metric", "eps_curve", eps=radii, steps=1, autoattack=AA).evaluate(make_ctx(seed=1))
    alive = [n] + [round(p["autoattack"] * n / 100) for p in curve["eps_curve"]]
    assert attacked == [(eps, survivors) for eps, survivors in zip(radii, alive) if survivors]
    assert alive[-2] < n, "choose radii where AutoAttack breaks images before the last radius"


def test_robust_at_a_radius_means_robust_at_every_smaller_one(make_ctx, monkeypatch):
    monkeypatch.setitem(sys.modules, "autoattack", None)
    ctx = make_ctx(seed=3, labels=torch.arange(24) % 4)  # some images misclassified clean
    radii = [2 / 255, 4 / 255, 8 / 255]
    ad.build("metric", "eps_curve", eps=radii, steps=3, autoattack=AA).evaluate(ctx)
    with torch.no_grad():
        clean = ctx.model(ctx.tensors()[0]).argmax(1) == ctx.labels
    for attack in ("pgd3", "autoattack"):
        flags = [ctx.records[f"eps_curve@{eps:.6g}/{attack}"] for eps in radii]
        assert not (flags[0] & ~clean).any(), "an image misclassified clean is never robust"
        for smaller, larger in itertools.pairwise(flags):
            assert not (larger & ~smaller).any()


def test_default_radii_are_multiples_of_the_runs_eps(make_ctx):
    metric = ad.build("metric", "eps_curve", steps=1, autoattack=False)
    paper = metric.radii(make_ctx().threat())
    assert [round(t.eps * 255, 6) for t in paper] == [8, 10, 12, 14, 16] and paper[0].source == "default"
    ctx = make_ctx(recipe=run_recipe(0.2))
    balls = metric.radii(ctx.threat())
    assert [t.eps for t in balls] == pytest.approx([0.2, 0.25, 0.3, 0.35, 0.4])
    assert {t.norm for t in balls} == {"linf"} and balls[0].source == "[attack]"
    curve = metric.evaluate(ctx)["eps_curve"]
    assert [p["eps"] for p in curve] == pytest.approx([0.2, 0.25, 0.3, 0.35, 0.4])
    # the step is a quarter of the run's ε at every radius; an L2 run gets an L2 curve
    assert ctx.threats["eps_curve@0.2/pgd1"]["settings"]["step_size"] == pytest.approx(0.05)
    assert ctx.threats["eps_curve@0.4/pgd1"] == {**ctx.threats["eps_curve@0.4/pgd1"], "norm": "linf", "eps": 0.4}
    l2 = make_ctx(recipe=run_recipe(0.5, "l2"))
    metric.evaluate(l2)
    assert {t["norm"] for t in l2.threats.values()} == {"l2"}
    multiples = ad.build("metric", "eps_curve", multiples=[1, 3], steps=1, autoattack=False)
    assert [t.eps for t in multiples.radii(ctx.threat())] == pytest.approx([0.2, 0.6])


def test_the_default_attacks_are_apgd_ce_and_apgd_t_and_standard_is_opt_in():
    cfg = ad.build("metric", "eps_curve").config
    assert cfg.autoattack == {"version": "custom", "attacks": ["apgd-ce", "apgd-t"]}
    assert cfg.steps == 20 and cfg.step_size is None and cfg.eps is None and cfg.multiples is None
    assert ad.build("metric", "eps_curve", autoattack={"version": "standard"}).config.autoattack == {
        "version": "standard"}


def test_without_autoattack_the_entry_is_null(make_ctx):
    curve = ad.build("metric", "eps_curve", eps=[0.01], steps=2, autoattack=False).evaluate(make_ctx())
    point = curve["eps_curve"][0]
    assert point["autoattack"] is None and set(point) == {"eps", "pgd2", "autoattack"}


@pytest.mark.parametrize("params,message", [
    ({"autoattack": {"eps": 0.1}}, "set per point"),
    ({"autoattack": {"limit": 10}}, "limit does not apply to the eps curve"),
    ({"autoattack": {"version": "custom"}}, "needs attacks"),
    ({"autoattack": {"n_iterz": 3}}, "Did you mean 'n_iter'"),
    ({"eps": []}, "at least one value"),
    ({"eps": [0.1, -1]}, "eps"),
    ({"eps": [0.1], "multiples": [1, 2]}, "either 'eps'"),
])
def test_bad_settings_are_refused(params, message):
    with pytest.raises(RecipeError, match=message):
        ad.build("metric", "eps_curve", **params)
