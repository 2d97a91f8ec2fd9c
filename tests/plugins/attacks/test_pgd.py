import pytest
import torch
import torch.nn.functional as F

import advdistill as ad
from advdistill.testing import check_attack


def naive_pgd(model, x, y, eps, step, steps, start_noise):
    """Madry PGD written out directly (reference implementation)."""
    x_adv = (x + start_noise).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv.clone().requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, [x_adv])
        x_adv = x_adv.detach() + step * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv


@pytest.mark.parametrize("train_mode", [True, False])
def test_pgd_contract(tiny_net, batch, train_mode):
    x, y = batch
    tiny_net.train(train_mode)
    attack = ad.build("attack", "pgd", eps="8/255", step_size="2/255", steps=5)
    check_attack(attack, tiny_net, x, y)


@pytest.mark.parametrize("norm,eps", [("l2", 0.5), ("l1", 3.0)])
def test_pgd_other_norms_stay_in_their_ball(tiny_net, batch, norm, eps):
    x, y = batch
    tiny_net.eval()
    attack = ad.build("attack", "pgd", eps=eps, step_size=eps / 4, steps=5, norm=norm)
    check_attack(attack, tiny_net, x, y)


def test_pgd_matches_naive_implementation(tiny_net, batch):
    x, y = batch
    tiny_net.eval()
    eps, step, steps = 8 / 255, 2 / 255, 7
    attack = ad.build("attack", "pgd", eps=eps, step_size=step, steps=steps)
    g = torch.Generator().manual_seed(5)
    ours = attack.perturb(tiny_net, x, y, generator=g)
    noise = (torch.rand(x.shape, generator=torch.Generator().manual_seed(5)) * 2 - 1) * eps
    reference = naive_pgd(tiny_net, x, y, eps, step, steps, noise)
    assert torch.allclose(ours, reference, atol=1e-6)


def test_pgd_increases_the_loss(tiny_net, batch):
    x, y = batch
    tiny_net.eval()
    attack = ad.build("attack", "pgd", eps=0.1, step_size=0.02, steps=10, start="none")
    x_adv = attack.perturb(tiny_net, x, y)
    with torch.no_grad():
        clean = F.cross_entropy(tiny_net(x), y, reduction="none")
        adv = F.cross_entropy(tiny_net(x_adv), y, reduction="none")
    assert (adv >= clean - 1e-6).all() and adv.sum() > clean.sum()


def test_zero_steps_returns_the_start(tiny_net, batch):
    x, y = batch
    attack = ad.build("attack", "pgd", steps=0, start="none")
    assert torch.equal(attack.perturb(tiny_net, x, y), x)


def test_eps_warmup_scales_the_budget_during_training_only(tiny_net, batch):
    from types import SimpleNamespace

    from advdistill.interfaces import Progress

    x, y = batch
    tiny_net.eval()
    attack = ad.build("attack", "pgd", eps=0.2, step_size=0.05, steps=5, warmup_epochs=2)
    early = SimpleNamespace(progress=Progress(epoch=1, epochs=10, step_in_epoch=0, steps_per_epoch=4))
    assert attack.budget(early) == pytest.approx((0.2 / 8, 0.05 / 8))
    later = SimpleNamespace(progress=Progress(epoch=3, epochs=10, step_in_epoch=0, steps_per_epoch=4))
    assert attack.budget(later) == (0.2, 0.05)
    x_adv = attack.perturb(tiny_net, x, y, context=early)
    assert (x_adv - x).abs().max() <= 0.2 / 8 + 1e-7
    assert attack.budget(None) == (0.2, 0.05)  # evaluation: the full ε


def igdm_authors_pgd(model, x, y, eps, step, steps, start_noise):
    """The IGDM authors' ARD inner maximization written out (attacks.PGD of their scripts): eval
    mode, a clamped uniform start, CE averaged over the batch, min/max projection."""
    model.eval()
    x_adv = (x + start_noise).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv.clone().requires_grad_(True)
        log_p = model(x_adv).log_softmax(dim=1)
        cost = -log_p[torch.arange(len(y)), y].sum() / len(y)
        (grad,) = torch.autograd.grad(cost, [x_adv])
        x_adv = x_adv.detach() + step * grad.sign()
        x_adv = (x + (x_adv - x).clamp(-eps, eps)).clamp(0, 1)
    return x_adv


def test_pgd_mean_reduction_ascends_the_batch_mean_ce(tiny_net, batch):
    x, y = batch
    tiny_net.eval()
    attack = ad.build("attack", "pgd", reduction="mean")
    with torch.no_grad():
        value = attack.loss(tiny_net, x, y, None, None)
        logits = tiny_net(x)
    by_hand = sum(torch.logsumexp(logits[i], 0) - logits[i, y[i]] for i in range(len(y))) / len(y)
    assert value.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert ad.build("attack", "pgd").loss(tiny_net, x, y, None, None).item() == pytest.approx(
        by_hand.item() * len(y), rel=1e-6)


def test_pgd_as_the_igdm_authors_ard_runs_it(tiny_net, batch):
    # step 2/225 (their typo for 2/255), clamped uniform start, CE averaged
    x, y = batch
    eps, step, steps = 8 / 255, 2 / 225, 5
    attack = ad.build("attack", "pgd", eps=eps, step_size="2/225", steps=steps, reduction="mean", clamp_start=True)
    ours = attack.perturb(tiny_net.eval(), x, y, generator=torch.Generator().manual_seed(9))
    noise = (torch.rand(x.shape, generator=torch.Generator().manual_seed(9)) * 2 - 1) * eps
    reference = igdm_authors_pgd(tiny_net, x, y, eps, step, steps, noise)
    assert torch.allclose(ours, reference, atol=1e-6)
    assert not torch.equal(ours, x)
