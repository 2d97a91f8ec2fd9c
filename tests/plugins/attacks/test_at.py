import pytest
import torch
import torch.nn.functional as F

import advdistill as ad
from advdistill.testing import check_attack

EPS, STEP, STEPS = 8 / 255, 2 / 255, 4


@pytest.fixture
def edge_batch(batch):
    """The shared batch with some pixels exactly at 0 and 1, where clamping the start matters."""
    x, y = batch
    x = x.clone()
    x[:, :, :2] = 0.0
    x[:, :, -2:] = 1.0
    return x, y


def normal_start(x, seed):
    """x + 0.001·N(0, 1), not clamped, drawn as the plugin draws it from a seeded generator."""
    return x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


def step(x_adv, grad, x):
    x_adv = x_adv.detach() + STEP * grad.sign()
    return torch.min(torch.max(x_adv, x - EPS), x + EPS).clamp(0, 1)


def naive_trades_attack(model, x, seed):
    """Official trades.py inner loop, one example at a time (KL summed over classes)."""
    with torch.no_grad():
        p_nat = [F.softmax(model(x[i : i + 1]), dim=1)[0] for i in range(len(x))]
    x_adv = normal_start(x, seed)
    for _ in range(STEPS):
        x_adv = x_adv.clone().requires_grad_(True)
        loss = 0.0
        for i in range(len(x)):
            log_q = F.log_softmax(model(x_adv[i : i + 1]), dim=1)[0]
            loss = loss + sum(p_nat[i][k] * (p_nat[i][k].log() - log_q[k]) for k in range(len(log_q)))
        (grad,) = torch.autograd.grad(loss, [x_adv])
        x_adv = step(x_adv, grad, x)
    return x_adv


def naive_mart_attack(model, x, y, seed):
    """Official mart.py inner loop: CE averaged over the batch, start not clamped."""
    x_adv = normal_start(x, seed)
    for _ in range(STEPS):
        x_adv = x_adv.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), [x_adv])
        x_adv = step(x_adv, grad, x)
    return x_adv


@pytest.mark.parametrize("name", ["trades_kl", "mart"])
@pytest.mark.parametrize("train_mode", [True, False])
def test_contract(tiny_net, edge_batch, name, train_mode):
    x, y = edge_batch
    tiny_net.train(train_mode)
    check_attack(ad.build("attack", name, steps=STEPS), tiny_net, x, y)


def test_trades_kl_matches_the_official_loop(tiny_net, edge_batch):
    x, y = edge_batch
    tiny_net.eval()
    attack = ad.build("attack", "trades_kl", steps=STEPS)
    ours = attack.perturb(tiny_net, x, y, generator=torch.Generator().manual_seed(9))
    assert torch.allclose(ours, naive_trades_attack(tiny_net, x, 9), atol=1e-6)


def test_mart_matches_the_official_loop(tiny_net, edge_batch):
    x, y = edge_batch
    tiny_net.eval()
    attack = ad.build("attack", "mart", steps=STEPS)
    ours = attack.perturb(tiny_net, x, y, generator=torch.Generator().manual_seed(9))
    assert torch.allclose(ours, naive_mart_attack(tiny_net, x, y, 9), atol=1e-6)
    # the test can tell: a clamped start (PGD's default) ends elsewhere on the 0/1 pixels
    clamped = ad.build("attack", "mart", steps=STEPS, clamp_start=True)
    other = clamped.perturb(tiny_net, x, y, generator=torch.Generator().manual_seed(9))
    assert not torch.allclose(other, ours)


@pytest.mark.parametrize("name", ["trades_kl", "mart", "rslad_kl", "adaad_kl"])
def test_official_start_is_normal_and_unclamped(name):
    cfg = ad.build("attack", name).config
    assert (cfg.start, cfg.start_std, cfg.clamp_start) == ("normal", 0.001, False)
    assert (cfg.eps, cfg.step_size, cfg.steps) == (8 / 255, 2 / 255, 10)


def test_zero_steps_still_returns_a_valid_point(tiny_net, edge_batch):
    x, y = edge_batch
    x_adv = ad.build("attack", "trades_kl", steps=0).perturb(tiny_net, x, y)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-7
    assert not torch.equal(x_adv, x)  # the random start is kept where it is valid


def test_trades_kl_target_is_the_student_in_the_attack_mode(tiny_net, edge_batch):
    """In train mode the clean target uses batch statistics; the loop must see the same mode."""
    x, y = edge_batch
    tiny_net.train()
    attack = ad.build("attack", "trades_kl", steps=1, start="none")
    with torch.no_grad():
        target = tiny_net(x)
    prepared = attack.prepare(tiny_net, x, y, None, None)
    assert torch.allclose(prepared, target)
