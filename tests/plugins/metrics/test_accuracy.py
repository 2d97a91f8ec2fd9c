"""Clean and PGD accuracy against independent implementations (torchattacks, naive loops)."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import torchattacks

import advdistill as ad
from advdistill.errors import RecipeError
from advdistill.testing import check_attack


def float_images(ctx):
    return ctx.images.float() / 255


def torchattacks_accuracy(attack_cls, model, ctx, seed, **kwargs):
    """Robust accuracy (%) with a torchattacks attack over the context's batches (global RNG seeded)."""
    torch.manual_seed(seed)
    attack = attack_cls(model, **kwargs)
    correct, adversarials = 0, []
    for x, y in zip(float_images(ctx).split(ctx.batch_size), ctx.labels.split(ctx.batch_size)):
        x_adv = attack(x, y)
        adversarials.append(x_adv)
        correct += (model(x_adv).argmax(1) == y).sum().item()
    return 100.0 * correct / ctx.n_examples, torch.cat(adversarials)


def test_clean_matches_a_loop(make_ctx, model, images):
    ctx = make_ctx(labels=torch.arange(24) % 4)
    expected = sum(int(model(images[i : i + 1].float() / 255).argmax() == i % 4) for i in range(24))
    assert ad.build("metric", "clean").evaluate(ctx) == {"clean": pytest.approx(100.0 * expected / 24)}


def test_pgd_defaults_are_the_papers():
    linf = ad.build("metric", "pgd")
    assert linf.key == "pgd20" and linf.threat().eps == pytest.approx(8 / 255) and linf.threat().norm == "linf"
    assert linf.attack().config.step_size == pytest.approx(2 / 255) and linf.config.steps == 20
    l2, l1 = ad.build("metric", "pgd", norm="l2"), ad.build("metric", "pgd", norm="l1")
    assert (l2.key, l2.threat().eps) == ("pgd_l2", pytest.approx(128 / 255))
    assert l2.attack().config.step_size == pytest.approx(32 / 255)
    assert (l1.key, l1.threat().eps, l1.attack().config.step_size) == ("pgd_l1", 12.0, 3.0)
    assert ad.build("metric", "pgd", steps=7, key="mine").key == "mine"
    # the unseen-norm attacks of Table 6 are also registered under their report keys
    for name in ("pgd_l2", "pgd_l1"):
        shortcut, explicit = ad.build("metric", name), ad.build("metric", "pgd", norm=name[-2:])
        assert (shortcut.key, shortcut.threat(), shortcut.attack().config) == (
            explicit.key, explicit.threat(), explicit.attack().config)
    with pytest.raises(RecipeError, match="eps"):
        ad.build("metric", "pgd", eps=0)


def test_pgd_linf_equals_torchattacks(make_ctx, model):
    """Same model, images, labels and seed: the same adversarial images and robust accuracy."""
    ctx = make_ctx(seed=3)
    metric = ad.build("metric", "pgd", eps="4/255", step_size="1/255")
    ours = metric.evaluate(ctx)["pgd20"]
    # our metric draws its random start from ctx.generator(stream=1); torchattacks from the global RNG
    seed = ctx.generator(stream=1).initial_seed()
    reference, _ = torchattacks_accuracy(torchattacks.PGD, model, ctx, seed, eps=4 / 255, alpha=1 / 255,
                                         steps=20)
    assert 0 < reference < 100, "choose a radius where the attack neither always fails nor always wins"
    assert ours == reference


def test_pgd_linf_adversarials_match_torchattacks_without_random_start(make_ctx, model):
    ctx = make_ctx()
    x, y = float_images(ctx)[:10], ctx.labels[:10]
    metric = ad.build("metric", "pgd", eps="4/255", step_size="1/255", random_start=False)
    ours = metric.attack().perturb(model, x, y)
    reference = torchattacks.PGD(model, eps=4 / 255, alpha=1 / 255, steps=20, random_start=False)(x, y)
    assert torch.allclose(ours, reference, atol=1e-6)


def test_pgd_l2_equals_torchattacks(make_ctx, model):
    ctx = make_ctx(seed=4)
    metric = ad.build("metric", "pgd", norm="l2", eps=0.15, step_size=0.04)
    ours = metric.evaluate(ctx)["pgd_l2"]
    seed = ctx.generator(stream=1).initial_seed()
    reference, _ = torchattacks_accuracy(torchattacks.PGDL2, model, ctx, seed, eps=0.15, alpha=0.04, steps=20)
    assert 0 < reference < 100
    assert ours == reference


def naive_sparse_l1_pgd(model, x, y, eps, step, steps, sparsity=0.95):
    """Sparse L1 descent (Tramer & Boneh 2019, advertorch SparseL1DescentAttack), one image at a time;
    the L1-ball projection by bisection on the soft threshold (not the sort-based algorithm)."""
    out = []
    for xi, yi in zip(x, y):
        xi, adv = xi[None], xi[None].clone()
        k = round((1 - sparsity) * xi.numel())
        for _ in range(steps):
            adv.requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(adv), yi[None]), [adv])
            flat = grad.flatten()
            top = flat.abs().topk(k).indices
            direction = torch.zeros_like(flat)
            direction[top] = flat[top].sign()
            adv = adv.detach() + step * (direction / direction.abs().sum()).view_as(adv)
            delta = (adv - xi).flatten()
            if delta.abs().sum() > eps:
                lo, hi = 0.0, delta.abs().max().item()
                for _ in range(100):
                    mid = (lo + hi) / 2
                    lo, hi = (mid, hi) if (delta.abs() - mid).clamp_min(0).sum() > eps else (lo, mid)
                delta = delta.sign() * (delta.abs() - hi).clamp_min(0)
            adv = (xi + delta.view_as(xi)).clamp(0, 1)
        out.append(adv)
    return torch.cat(out)


def test_pgd_l1_matches_a_naive_sparse_l1_descent(make_ctx, model):
    ctx = make_ctx()
    x, y = float_images(ctx)[:6], ctx.labels[:6]
    metric = ad.build("metric", "pgd", norm="l1", eps=2.0, step_size=0.5, steps=5, random_start=False)
    attack = metric.attack()
    ours = attack.perturb(model, x, y)
    reference = naive_sparse_l1_pgd(model, x, y, eps=2.0, step=0.5, steps=5)
    assert torch.allclose(ours, reference, atol=1e-5)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_every_pgd_stays_in_its_ball_and_the_image_range(make_ctx, model, norm):
    ctx = make_ctx()
    attack = ad.build("metric", "pgd", norm=norm, steps=3).attack()
    check_attack(attack, model, float_images(ctx)[:8], ctx.labels[:8])


def test_restarts_count_an_image_only_if_it_survives_all(make_ctx, model):
    ctx = make_ctx(seed=1)
    metric = ad.build("metric", "pgd", eps="3/255", step_size="1/255", steps=5, restarts=3)
    ours = metric.evaluate(ctx)["pgd5"]
    attack, generator = metric.attack(), ctx.generator(stream=1)
    survived = 0
    for x, y in ctx.batches():
        outcomes = [model(attack.perturb(model, x, y, generator=generator)).argmax(1) == y for _ in range(3)]
        survived += torch.stack(outcomes).all(0).sum().item()
    single = ad.build("metric", "pgd", eps="3/255", step_size="1/255", steps=5).evaluate(ctx)["pgd5"]
    assert ours == 100.0 * survived / ctx.n_examples <= single


def run_recipe(eps, norm="linf"):
    """What the metrics read of a recipe: its [attack] (the run's threat model)."""
    return SimpleNamespace(attack=SimpleNamespace(config=SimpleNamespace(eps=eps, norm=norm)))


def test_pgd_attacks_at_the_run_s_eps_and_says_so(make_ctx):
    ctx = make_ctx(recipe=run_recipe(0.2))
    value = ad.build("metric", "pgd", steps=3).evaluate(ctx)["pgd3"]
    explicit = ad.build("metric", "pgd", steps=3, eps=0.2).evaluate(make_ctx())["pgd3"]
    assert value == explicit
    declared = ctx.threats["pgd3"]
    assert (declared["norm"], declared["eps"], declared["source"], declared["attack"]) == ("linf", 0.2, "[attack]",
                                                                                           "pgd")
    assert declared["settings"]["step_size"] == pytest.approx(0.05)  # ε/4
