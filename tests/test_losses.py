"""The shared KL helpers of advdistill.losses against explicit double loops."""

import math

import pytest
import torch

from advdistill.losses import kl_div, weighted_kl_div

T = torch.tensor([[1.0, -0.5, 2.0], [0.2, 0.1, -1.0]])
S = torch.tensor([[0.3, 0.4, -0.2], [1.5, -0.3, 0.0]])


def probs(row, tau=1.0):
    e = [math.exp(v / tau) for v in row]
    return [v / sum(e) for v in e]


def kl_terms(tau=1.0, target_eps=0.0, input_eps=0.0):
    """Elementwise p·(log(p + target_eps) − log(q + input_eps)) as nested lists."""
    out = []
    for t_row, s_row in zip(T.tolist(), S.tolist()):
        p, q = probs(t_row, tau), probs(s_row, tau)
        out.append([pk * (math.log(pk + target_eps) - math.log(qk + input_eps)) for pk, qk in zip(p, q)])
    return out


@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum", "none"])
@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_kl_div_reductions_and_temperature(reduction, tau):
    terms = kl_terms(tau)
    expected = {
        "batchmean": sum(map(sum, terms)) / 2,
        "mean": sum(map(sum, terms)) / 6,
        "sum": sum(map(sum, terms)),
        "none": [sum(row) for row in terms],
    }[reduction]
    ours = kl_div(T, S, temperature=tau, reduction=reduction)
    assert ours.tolist() == pytest.approx(expected, rel=1e-5)


def test_kl_div_official_eps_forms():
    ours = kl_div(T, S, reduction="sum", target_eps=1e-5, input_eps=1e-3)
    assert ours.item() == pytest.approx(sum(map(sum, kl_terms(target_eps=1e-5, input_eps=1e-3))), rel=1e-5)
    exact = kl_div(T, S, reduction="sum")
    assert ours.item() != pytest.approx(exact.item(), rel=1e-4)


def test_kl_div_gradient_flows_into_both_arguments():
    t, s = T.clone().requires_grad_(True), S.clone().requires_grad_(True)
    kl_div(t, s).backward()
    assert t.grad.abs().sum() > 0 and s.grad.abs().sum() > 0


def test_weighted_kl_div():
    w = torch.tensor([0.25, 2.0])
    terms = kl_terms(tau=2.0)
    expected = (0.25 * sum(terms[0]) + 2.0 * sum(terms[1])) / 2
    assert weighted_kl_div(T, S, w, temperature=2.0).item() == pytest.approx(expected, rel=1e-5)


def test_unknown_reduction_is_an_error():
    with pytest.raises(ValueError, match="unknown reduction"):
        kl_div(T, S, reduction="avg")
