import pytest
import torch
from conftest import B, C
from objective_reference import assert_same_value_and_gradient, kl1, softmax1

import advdistill as ad
from advdistill.testing import check_objective, check_objective_gradient


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
