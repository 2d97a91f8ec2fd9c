"""The AutoAttack adapter: same result as calling the package, RNG hygiene, backend selection."""

import logging
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pyautoattack import AutoAttack

import advdistill as ad
from advdistill.errors import PluginError, RecipeError
from advdistill_plugins.metrics.autoattack import run_autoattack, select_backend

QUICK = dict(version="custom", attacks=["apgd-ce", "apgd-t"], n_iter=10, n_restarts=1, backend="pyautoattack")


@pytest.fixture
def no_upstream(monkeypatch):
    """Make `import autoattack` fail, whatever is installed."""
    monkeypatch.setitem(sys.modules, "autoattack", None)


def test_adapter_gives_what_the_package_gives(make_ctx, model, no_upstream):
    ctx = make_ctx(seed=7)
    ours = ad.build("metric", "autoattack", eps="4/255", **QUICK).evaluate(ctx)["autoattack"]
    aa = AutoAttack(model, attacks=["apgd-ce", "apgd-t"], device="cpu", eps=4 / 255, seed=7, version="custom")
    for attack in (aa.apgd, aa.apgd_targeted):
        attack.n_iter = attack.n_iter_orig = 10
        attack.n_iter_2, attack.n_iter_min, attack.size_decr = 2, 1, 1
    aa.apgd.n_restarts = 1
    aa.apgd_targeted.n_target_classes = 3
    x = ctx.images.float() / 255
    _, y_adv = aa.run_standard_evaluation(x, ctx.labels, batch_size=ctx.batch_size)
    assert ours == 100.0 * (y_adv == ctx.labels).sum().item() / ctx.n_examples


def test_autoattack_is_at_least_as_strong_as_pgd(make_ctx, no_upstream):
    ctx = make_ctx(seed=2)
    pgd = ad.build("metric", "pgd", eps="4/255", step_size="1/255").evaluate(ctx)["pgd20"]
    aa = ad.build("metric", "autoattack", eps="4/255", **{**QUICK, "n_iter": 20}).evaluate(ctx)["autoattack"]
    assert 0 < pgd < 100, "choose a radius where PGD neither always fails nor always wins"
    assert aa <= pgd


def test_global_rng_is_restored_and_the_seed_decides(make_ctx, no_upstream):
    ctx = make_ctx()
    metric = ad.build("metric", "autoattack", eps="4/255", seed=3, **QUICK)
    torch.manual_seed(123)
    np.random.seed(5)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    first = metric.evaluate(ctx)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert metric.evaluate(ctx) == first


def test_standard_version_runs_on_four_classes(make_ctx, no_upstream):
    """AutoAttack's 9 target classes are capped at C − 1 (otherwise APGD-T indexes past 4 classes)."""
    ctx = make_ctx(images=make_ctx().images[:6], labels=make_ctx().labels[:6])
    metric = ad.build("metric", "autoattack", eps="2/255", n_iter=2, n_queries=5, backend="pyautoattack")
    value = metric.evaluate(ctx)["autoattack"]
    assert 0 <= value <= 100


def test_progress_is_forwarded_and_the_logger_restored(make_ctx, caplog, no_upstream):
    aa_logger = logging.getLogger("auto-attack")
    before = aa_logger.level, aa_logger.propagate, list(aa_logger.handlers)
    with caplog.at_level(logging.INFO, logger="advdistill_plugins.metrics.autoattack"):
        ad.build("metric", "autoattack", eps="4/255", **QUICK).evaluate(make_ctx(label="aa"))
    assert any("aa: robust accuracy after APGD-CE" in r.getMessage() for r in caplog.records)
    assert (aa_logger.level, aa_logger.propagate, list(aa_logger.handlers)) == before


class FakeUpstream:
    """Stands in for the upstream `autoattack` package and records how it is called."""

    def __init__(self, return_labels=True):
        module = types.ModuleType("autoattack")
        recorder = self

        class Attack:  # attributes the adapter tunes
            n_iter = n_iter_orig = 100
            n_restarts, n_target_classes, n_queries = 1, 9, 5000

        class AutoAttack:
            def __init__(self, model, norm="Linf", eps=0.3, seed=None, verbose=True, attacks_to_run=(),
                         version="standard", is_tf_model=False, device="cuda", log_path=None):
                recorder.init = dict(norm=norm, eps=eps, seed=seed, attacks_to_run=list(attacks_to_run),
                                     version=version, device=device)
                self.model = model
                self.apgd, self.apgd_targeted, self.fab, self.square = Attack(), Attack(), Attack(), Attack()
                recorder.instance = self

            if return_labels:
                def run_standard_evaluation(self, x, y, bs=250, return_labels=False):
                    recorder.run = dict(bs=bs, return_labels=return_labels)
                    flipped = y.clone()
                    flipped[::2] = (y[::2] + 1) % 4  # every other image "broken"
                    return x, flipped
            else:
                def run_standard_evaluation(self, x, y, bs=250):
                    recorder.run = dict(bs=bs)
                    return x

        module.AutoAttack = AutoAttack
        self.module = module


def test_upstream_package_is_preferred_when_importable(make_ctx, monkeypatch):
    fake = FakeUpstream()
    monkeypatch.setitem(sys.modules, "autoattack", fake.module)
    assert select_backend("auto")[0] == "autoattack"
    metric = ad.build("metric", "autoattack", norm="l2", version="custom", attacks=["apgd-ce"], n_iter=7,
                      batch_size=5, seed=9)
    assert metric.evaluate(make_ctx()) == {"autoattack_l2": 50.0}
    assert fake.init == dict(norm="L2", eps=pytest.approx(128 / 255), seed=9, attacks_to_run=["apgd-ce"],
                             version="custom", device=torch.device("cpu"))
    assert fake.run == dict(bs=5, return_labels=True)
    assert fake.instance.apgd.n_iter == 7 and fake.instance.apgd_targeted.n_target_classes == 3
    # an explicit backend wins over what is importable
    assert select_backend("pyautoattack")[0] == "pyautoattack"


def test_old_upstream_without_labels_is_scored_by_predicting(make_ctx, model, monkeypatch):
    monkeypatch.setitem(sys.modules, "autoattack", FakeUpstream(return_labels=False).module)
    ctx = make_ctx()
    # the fake returns the clean images: accuracy = clean accuracy = 100 % (labels are predictions)
    assert ad.build("metric", "autoattack").evaluate(ctx) == {"autoattack": 100.0}


def test_missing_upstream_is_a_clear_error_when_asked_for(no_upstream):
    assert select_backend("auto")[0] == "pyautoattack"
    with pytest.raises(PluginError, match="upstream package is not importable"):
        select_backend("autoattack")


def test_run_autoattack_accepts_cpu_tensors(model, images, labels, no_upstream):
    metric = ad.build("metric", "autoattack", eps="4/255", **QUICK)
    flags = run_autoattack(model, images.float() / 255, labels, metric.config, threat=metric.threat(), num_classes=4,
                           seed=0, batch_size=8, device=torch.device("cpu"))
    assert flags.dtype == torch.bool and flags.shape == labels.shape


@pytest.mark.parametrize("params,message", [
    (dict(version="custom"), "needs attacks"),
    (dict(attacks=["apgd-ce"]), "only used with version = 'custom'"),
    (dict(version="custom", attacks=["apgd_ce"]), "Did you mean 'apgd-ce'"),
    (dict(backend="upstream"), "backend"),
])
def test_bad_settings_name_the_problem(params, message):
    with pytest.raises(RecipeError, match=message):
        ad.build("metric", "autoattack", **params)


def test_limit_attacks_the_first_images_only_and_records_nothing(make_ctx, no_upstream):
    ctx = make_ctx(seed=4)
    limited = ad.build("metric", "autoattack", eps="4/255", limit=10, **QUICK).evaluate(ctx)
    first = make_ctx(seed=4, images=ctx.images[:10], labels=ctx.labels[:10])
    alone = ad.build("metric", "autoattack", eps="4/255", **QUICK).evaluate(first)
    assert limited == {"autoattack": alone["autoattack"], "autoattack_n": 10}
    assert ctx.records == {} and set(first.records) == {"autoattack"}
    # a limit of at least every image is no limit: every image is attacked and recorded
    whole = ad.build("metric", "autoattack", eps="4/255", limit=ctx.n_examples, **QUICK).evaluate(ctx)
    assert set(whole) == {"autoattack"} and ctx.records["autoattack"].shape == (ctx.n_examples,)


def run_recipe(eps, norm="linf"):
    """What the metrics read of a recipe: its [attack] (the run's threat model)."""
    return SimpleNamespace(attack=SimpleNamespace(config=SimpleNamespace(eps=eps, norm=norm)))


def test_autoattack_attacks_at_the_run_s_eps_and_says_so(make_ctx, monkeypatch):
    monkeypatch.setitem(sys.modules, "autoattack", None)
    ctx = make_ctx(recipe=run_recipe(0.2))
    value = ad.build("metric", "autoattack", **QUICK).evaluate(ctx)["autoattack"]
    explicit = ad.build("metric", "autoattack", eps=0.2, **QUICK).evaluate(make_ctx())
    assert value == explicit["autoattack"]
    assert (ctx.threats["autoattack"]["eps"], ctx.threats["autoattack"]["label"]) == (0.2, "APGD-CE + APGD-T")
