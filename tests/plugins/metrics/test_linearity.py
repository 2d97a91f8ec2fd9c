"""The Taylor remainder share: forward-mode JVP against finite differences, and the metric's mean."""

import pytest
import torch

import advdistill as ad
from advdistill.errors import RecipeError
from advdistill_plugins.metrics.common import uniform_perturbation
from advdistill_plugins.metrics.linearity import taylor_remainder


def finite_difference_share(model, x, eps, h=1e-5):
    """‖f(x+ε) − f(x) − Jε‖ / ‖f(x+ε) − f(x)‖ with Jε = (f(x + hε) − f(x − hε)) / 2h, per example."""
    with torch.no_grad():
        jvp = (model(x + h * eps) - model(x - h * eps)) / (2 * h)
        change = model(x + eps) - model(x)
        remainder = (change - jvp).norm(dim=1)
        return remainder / change.norm(dim=1), remainder, model(x + eps).norm(dim=1)


@pytest.fixture
def double_model(model):
    return model.double()


def test_jvp_remainder_matches_finite_differences(double_model):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 8, 8, generator=g, dtype=torch.double)
    eps = uniform_perturbation(x, 8 / 255, g)
    share, remainder, output = finite_difference_share(double_model, x, eps)
    assert torch.allclose(taylor_remainder(double_model, x, eps), share, rtol=1e-6)
    assert torch.allclose(taylor_remainder(double_model, x, eps, normalization="none"), remainder, rtol=1e-6)
    assert torch.allclose(taylor_remainder(double_model, x, eps, normalization="output"), remainder / output,
                          rtol=1e-6)
    assert (share > 0).all()


def test_a_linear_model_has_no_remainder():
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4)).double()
    x = torch.rand(3, 1, 8, 8, dtype=torch.double)
    eps = (torch.rand_like(x) * 2 - 1) * 0.03
    assert taylor_remainder(linear, x, eps).abs().max() < 1e-10


def test_uniform_perturbation_is_clamped_to_the_image_range():
    g = torch.Generator().manual_seed(1)
    x = torch.tensor([[[[0.0, 1.0, 0.5, 0.01]]]]).repeat(200, 1, 1, 1)
    delta = uniform_perturbation(x, 0.1, g)
    assert ((x + delta) >= 0).all() and ((x + delta) <= 1).all() and delta.abs().max() <= 0.1
    raw = uniform_perturbation(x, 0.1, torch.Generator().manual_seed(1), clamp=False)
    assert raw.min() < -0.09 and raw.max() > 0.09 and raw.abs().max() <= 0.1


def test_metric_is_the_mean_over_images_of_the_share(make_ctx, model):
    ctx = make_ctx(seed=4)
    value = ad.build("metric", "linearity").evaluate(ctx)["linearity_remainder"]
    generator, shares = ctx.generator(stream=5), []
    for x, _ in ctx.batches():
        eps = uniform_perturbation(x, 8 / 255, generator)
        with torch.no_grad():
            change = model(x + eps) - model(x)
        x_ = x.clone().requires_grad_(True)  # J ε by reverse mode: ∂(u · f(x))/∂x · ε per output u
        out = model(x_)
        jvp = torch.stack([torch.autograd.grad(out[:, c].sum(), [x_], retain_graph=True)[0].flatten(1)
                           .mul(eps.flatten(1)).sum(1) for c in range(out.shape[1])], dim=1)
        shares.append((change - jvp).norm(dim=1) / change.norm(dim=1))
    assert value == pytest.approx(torch.cat(shares).double().mean().item(), rel=1e-4)


def test_bad_normalization_is_refused():
    with pytest.raises(RecipeError, match="normalization"):
        ad.build("metric", "linearity", normalization="logits")
