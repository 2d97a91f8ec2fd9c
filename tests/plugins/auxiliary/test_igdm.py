import math

import pytest
import torch

import advdistill as ad
from advdistill.context import StepContext
from advdistill.interfaces import Progress
from advdistill.testing import check_objective


class Linear(torch.nn.Module):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.fc = torch.nn.Linear(12, 5)

    def forward(self, x):
        return self.fc(x.flatten(1)) * 3


def naive_igdm(student, teacher, x, delta, beta, gamma, distance, temperature, weight):
    """Eq. 8 written out per example with explicit sums (independent of the plugin)."""
    total = 0.0
    for i in range(x.shape[0]):
        xi, di = x[i : i + 1], delta[i : i + 1]
        ds = (student(xi + beta * di) - student(xi - gamma * di))[0]
        with torch.no_grad():
            dt = (teacher(xi + beta * di) - teacher(xi - gamma * di))[0]
        if distance == "kl":
            p = torch.exp(dt / temperature) / torch.exp(dt / temperature).sum()
            log_q = ds / temperature - torch.log(torch.exp(ds / temperature).sum())
            total = total + (p * (torch.log(p) - log_q)).sum()
        elif distance == "l1":
            total = total + (ds - dt).abs().sum() / ds.numel()
        else:
            total = total + ((ds - dt) ** 2).sum() / ds.numel()
    return weight * total / x.shape[0]


@pytest.mark.parametrize("distance", ["kl", "l1", "l2"])
@pytest.mark.parametrize("beta,gamma", [(1.0, 1.0), (2.0, 0.5), (0.0, 1.0)])
def test_igdm_matches_naive_value_and_gradient(distance, beta, gamma):
    student, teacher = Linear(0), Linear(1).requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 3, 4, generator=g)
    x_adv = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    progress = Progress(epoch=3, epochs=10)
    temperature = 2.0 if distance == "kl" else 1.0
    igdm = ad.build("aux", "igdm", beta=beta, gamma=gamma, distance=distance, temperature=temperature)
    ctx = StepContext(x, torch.zeros(4, dtype=torch.long), student=student, teacher=teacher, progress=progress)
    ctx.set_adversarial(x_adv)
    ours = check_objective(igdm, ctx)
    weight = 20.0 * 3 / 10  # default T(alpha) = alpha * epoch / E, alpha = 20
    ref = naive_igdm(student, teacher, x, x_adv - x, beta, gamma, distance, temperature, weight)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-7)
    g_ours = torch.autograd.grad(ours, student.fc.weight)[0]
    g_ref = torch.autograd.grad(ref, student.fc.weight)[0]
    assert torch.allclose(g_ours, g_ref, rtol=1e-4, atol=1e-6)


def test_igdm_kl_direction_is_teacher_to_student():
    # KL(softmax(ΔT) || softmax(ΔS)) is not symmetric: check against the explicit direction
    ds = torch.tensor([[2.0, 0.0, -1.0]])
    dt = torch.tensor([[0.0, 1.0, 0.5]])
    from advdistill_plugins.auxiliary.igdm import igdm_distance

    p, q = dt.softmax(1), ds.softmax(1)
    assert igdm_distance(ds, dt, "kl").item() == pytest.approx((p * (p / q).log()).sum().item(), rel=1e-6)


def test_igdm_schedule_is_linear_from_epoch_one():
    igdm = ad.build("aux", "igdm")
    values = [igdm.config.alpha(Progress(epoch=e, epochs=4)) for e in range(1, 5)]
    assert values == [5.0, 10.0, 15.0, 20.0]
    constant = ad.build("aux", "igdm", alpha=2)
    assert constant.config.alpha(Progress(epoch=1, epochs=4)) == 2.0


def test_igdm_reuses_the_adversarial_forward_and_batches_the_teacher_points():
    calls = []

    class Counting(Linear):
        def forward(self, x):
            calls.append(x.shape[0])
            return super().forward(x)

    student, teacher = Counting(0), Counting(1).requires_grad_(False)
    x = torch.rand(4, 1, 3, 4)
    ctx = StepContext(x, torch.zeros(4, dtype=torch.long), student=student, teacher=teacher,
                      progress=Progress(epoch=1, epochs=1))
    ctx.set_adversarial((x + 0.05).clamp(0, 1))
    ctx.student_logits(1.0)  # the base method's S(x_adv)
    calls.clear()
    ad.build("aux", "igdm")(ctx)
    # student: only x - δ (x + δ is x_adv, cached); teacher: both points in one batch of 8
    assert sorted(calls) == [4, 8]
    # β ≠ 1: each student point is a forward of its own; the teacher still gets one batch
    ctx.set_adversarial((x + 0.05).clamp(0, 1))
    calls.clear()
    ad.build("aux", "igdm", beta=1.5, gamma=0.5)(ctx)
    assert sorted(calls) == [4, 4, 8]


def test_igdm_points_are_exact_for_beta_one():
    x = torch.rand(2, 1, 3, 4)
    x_adv = (x + 0.03).clamp(0, 1)
    ctx = StepContext(x, torch.zeros(2, dtype=torch.long), student=Linear(0), teacher=None,
                      progress=Progress(epoch=1, epochs=1))
    ctx.set_adversarial(x_adv)
    assert ctx.point(1.0) is ctx.x_adv and ctx.point(0.0) is x
    assert torch.equal(ctx.point(-1.0), x - (x_adv - x))
    assert not math.isnan(ctx.point(0.5).sum().item())


class BNNet(torch.nn.Module):
    """A student with BatchNorm: in train mode a forward's output depends on its whole batch."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 12, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1)) * 3


@pytest.mark.parametrize("beta,gamma", [(1.5, 0.5), (1.0, 1.0), (2.0, 0.0)])
def test_igdm_under_batchnorm_is_the_official_separate_forwards(beta, gamma):
    """Official scripts: out_plus = student(x + βδ); out_minus = student(x − γδ), two calls in
    train mode; the teacher (eval mode) may see both points in one batch."""
    student, teacher = BNNet(0).train(), BNNet(1).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(6, 1, 3, 4, generator=g)
    x_adv = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    delta = x_adv - x
    ctx = StepContext(x, torch.zeros(6, dtype=torch.long), student=student, teacher=teacher,
                      progress=Progress(epoch=2, epochs=4))
    ctx.set_adversarial(x_adv)
    ours = ad.build("aux", "igdm", beta=beta, gamma=gamma, alpha=1.0)(ctx)

    s_plus, s_minus = student(x + beta * delta), student(x - gamma * delta)  # two train-mode calls
    with torch.no_grad():
        t_plus, t_minus = teacher(x + beta * delta), teacher(x - gamma * delta)
    p = torch.softmax(t_plus - t_minus, dim=1)
    official = (p * (p.log() - torch.log_softmax(s_plus - s_minus, dim=1))).sum() / x.shape[0]
    assert ours.item() == pytest.approx(official.item(), rel=1e-6, abs=1e-8)
    g_ours = torch.autograd.grad(ours, student.conv.weight)[0]
    g_official = torch.autograd.grad(official, student.conv.weight)[0]
    assert torch.allclose(g_ours, g_official, rtol=1e-5, atol=1e-7)
    # the test can tell: one batched train-mode forward of both points gives another value
    joint = student(torch.cat([x + beta * delta, x - gamma * delta])).split(6)
    batched = (p * (p.log() - torch.log_softmax(joint[0] - joint[1], dim=1))).sum() / x.shape[0]
    if gamma > 0:
        assert batched.item() != pytest.approx(official.item(), rel=1e-4)
