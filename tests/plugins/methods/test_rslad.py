import pytest
import torch
import torch.nn.functional as F
from conftest import B, C
from objective_reference import assert_same_value_and_gradient, kl1, softmax1

import advdistill as ad
from advdistill.testing import check_attack, check_objective, check_objective_gradient


def naive_rslad(student, teacher, x, x_adv, *, scale=1.0, form="official", reduction="mean", tau=1.0,
                w_adv=5 / 6, w_nat=1 / 6):
    """scale·(5/6·k(T(x), S(x_adv)) + 1/6·k(T(x), S(x))); official k = Σ −log q·b + b·log(b + 1e-5)."""
    def k(p, q):
        if form == "official":
            return sum(-torch.log(q[j]) * p[j] + p[j] * torch.log(p[j] + 1e-5) for j in range(len(p)))
        return kl1(p, q)

    adv, nat = 0.0, 0.0
    for i in range(B):
        p_t = softmax1(teacher(x[i : i + 1])[0], tau)
        adv = adv + k(p_t, softmax1(student(x_adv[i : i + 1])[0], tau))
        nat = nat + k(p_t, softmax1(student(x[i : i + 1])[0], tau))
    divisor = B * C if reduction == "mean" else B
    return scale * (w_adv * adv + w_nat * nat) / divisor


@pytest.mark.parametrize(
    "params",
    [{}, {"scale": 10.0}, {"form": "exact", "reduction": "batchmean"}, {"form": "exact", "temperature": 2.0}],
)
def test_rslad_matches_naive_value_and_gradient(models, data, make_context, params):
    student, teacher = models
    x, x_adv, _ = data
    ours = check_objective(ad.build("objective", "rslad", **params), make_context())
    kwargs = {"tau" if k == "temperature" else k: v for k, v in params.items()}
    assert_same_value_and_gradient(ours, naive_rslad(student, teacher, x, x_adv, **kwargs), student)


def test_rslad_official_form_shifts_the_value_not_the_gradient(models, make_context):
    student, _ = models
    losses = [ad.build("objective", "rslad", form=f)(make_context()) for f in ("official", "exact")]
    assert losses[0].item() != pytest.approx(losses[1].item(), rel=1e-6)
    grads = [torch.autograd.grad(loss, student.weight)[0] for loss in losses]
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_rslad_gradient_matches_finite_differences(make_context):
    check_objective_gradient(ad.build("objective", "rslad"), make_context)



def test_rslad_weights_can_be_scheduled(models, data, make_context):
    student, teacher = models
    x, x_adv, _ = data
    rslad = ad.build("objective", "rslad", adv_weight={"kind": "linear", "end": 1.0}, nat_weight=0.5)
    ours = rslad(make_context(epoch=1, epochs=4))  # adversarial weight 1/4 in the first of 4 epochs
    reference = naive_rslad(student, teacher, x, x_adv, w_adv=0.25, w_nat=0.5)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)


# -- the inner maximization (rslad_kl) ------------------------------------------------------------

def test_rslad_inner_uses_teacher_soft_labels(tiny_net, tiny_teacher, batch):
    x, y = batch
    tiny_net.eval()
    attack = ad.build("attack", "rslad_kl", eps=0.05, step_size=0.01, steps=4)
    x_adv = check_attack(attack, tiny_net, x, y, teacher=tiny_teacher)
    # reference: ascend sum KL(p_T(x) || p_S(x')) from x + 0.001 N(0, 1), unclamped start
    g = torch.Generator().manual_seed(1234)
    x_ref = x + 0.001 * torch.randn(x.shape, generator=g)
    p_t = F.softmax(tiny_teacher(x), dim=1)
    for _ in range(4):
        x_ref = x_ref.clone().requires_grad_(True)
        log_q = F.log_softmax(tiny_net(x_ref), dim=1)
        loss = (p_t * (p_t.log() - log_q)).sum()
        (grad,) = torch.autograd.grad(loss, [x_ref])
        x_ref = torch.min(torch.max(x_ref.detach() + 0.01 * grad.sign(), x - 0.05), x + 0.05).clamp(0, 1)
    assert torch.allclose(x_adv, x_ref, atol=1e-6)


def test_attack_needing_a_teacher_says_so(tiny_net, batch):
    x, y = batch
    with pytest.raises(ValueError, match="needs a teacher"):
        ad.build("attack", "rslad_kl").perturb(tiny_net, x, y)
