import pytest
import torch
import torch.nn.functional as F

import advdistill as ad
from advdistill.testing import check_attack

EPS, STEP, STEPS = 0.05, 0.01, 4


def naive_adaad_attack(student, teacher, x, seed, detach_teacher=False):
    """Official adaad_inner_loss: ascend Σ KL(p_T(x') ‖ p_S(x')), gradient through both models."""
    x_adv = x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    for _ in range(STEPS):
        x_adv = x_adv.clone().requires_grad_(True)
        loss = 0.0
        for i in range(len(x)):
            xi = x_adv[i : i + 1]
            t = teacher(xi)[0]
            t = t.detach() if detach_teacher else t
            p, log_q = F.softmax(t, dim=0), F.log_softmax(student(xi)[0], dim=0)
            loss = loss + (p * (p.log() - log_q)).sum()
        (grad,) = torch.autograd.grad(loss, [x_adv])
        x_adv = torch.min(torch.max(x_adv.detach() + STEP * grad.sign(), x - EPS), x + EPS).clamp(0, 1)
    return x_adv


@pytest.mark.parametrize("train_mode", [True, False])
def test_adaad_kl_contract(tiny_net, tiny_teacher, batch, train_mode):
    x, y = batch
    tiny_net.train(train_mode)
    check_attack(ad.build("attack", "adaad_kl", steps=STEPS), tiny_net, x, y, teacher=tiny_teacher)


def test_adaad_kl_matches_the_official_loop_with_the_teacher_in_the_gradient(tiny_net, tiny_teacher, batch):
    x, y = batch
    tiny_net.eval()
    attack = ad.build("attack", "adaad_kl", eps=EPS, step_size=STEP, steps=STEPS)
    ours = attack.perturb(tiny_net, x, y, teacher=tiny_teacher, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(ours, naive_adaad_attack(tiny_net, tiny_teacher, x, 4), atol=1e-6)
    # the test can tell: a detached teacher gives another x_adv
    detached = naive_adaad_attack(tiny_net, tiny_teacher, x, 4, detach_teacher=True)
    assert not torch.allclose(ours, detached, atol=1e-6)


def test_adaad_kl_leaves_the_teacher_frozen(tiny_net, tiny_teacher, batch):
    x, y = batch
    ad.build("attack", "adaad_kl", steps=2).perturb(tiny_net, x, y, teacher=tiny_teacher)
    assert all(not p.requires_grad and p.grad is None for p in tiny_teacher.parameters())
    assert not tiny_teacher.training


def test_adaad_kl_needs_a_teacher(tiny_net, batch):
    x, y = batch
    with pytest.raises(ValueError, match="needs a teacher"):
        ad.build("attack", "adaad_kl").perturb(tiny_net, x, y)
