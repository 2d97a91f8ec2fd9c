"""GD / GC against a naive per-example computation."""

import pytest
import torch
import torch.nn.functional as F

import advdistill as ad


def naive_gd_gc(student, teacher, x, y):
    """One example at a time: its own CE, its own backward, then distance and cosine by hand."""
    distances, cosines = [], []
    for xi, yi in zip(x, y):
        grads = []
        for net in (teacher, student):
            xi_ = xi[None].clone().requires_grad_(True)
            loss = F.cross_entropy(net(xi_), yi[None])
            (g,) = torch.autograd.grad(loss, [xi_])
            grads.append(g.flatten().double())
        g_t, g_s = grads
        distances.append(torch.sqrt(((g_t - g_s) ** 2).sum()).item())
        cosines.append((g_t @ g_s / (g_t.norm() * g_s.norm())).item())
    return sum(distances) / len(distances), sum(cosines) / len(cosines)


def test_gd_gc_match_a_per_example_loop(make_ctx, model, teacher):
    ctx = make_ctx(labels=torch.arange(24) % 4)
    result = ad.build("metric", "grad_alignment").evaluate(ctx)
    gd, gc = naive_gd_gc(model, teacher, ctx.images.float() / 255, ctx.labels)
    assert result["gd"] == pytest.approx(gd, rel=1e-5)
    assert result["gc"] == pytest.approx(gc, rel=1e-5, abs=1e-7)
    assert result["gd"] > 0 and -1 <= result["gc"] <= 1


def test_identical_models_have_gd_0_and_gc_1(make_ctx, model):
    result = ad.build("metric", "grad_alignment").evaluate(make_ctx(teacher=model))
    assert result["gd"] == 0.0 and result["gc"] == pytest.approx(1.0, abs=1e-6)


def test_one_backward_per_model_and_batch(make_ctx, monkeypatch):
    calls = []
    original = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1) or original(*a, **k))
    ctx = make_ctx()  # 24 images in batches of 10: 3 batches
    ad.build("metric", "grad_alignment").evaluate(ctx)
    assert len(calls) == 2 * 3
