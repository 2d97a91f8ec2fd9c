import torch

from advdistill_plugins.attacks.base import project, project_l1


def naive_l1_projection(v, eps):
    """Bisection on the soft-threshold θ such that ||soft(v, θ)||_1 = eps (reference)."""
    out = []
    for row in v:
        if row.abs().sum() <= eps:
            out.append(row)
            continue
        lo, hi = 0.0, row.abs().max().item()
        for _ in range(200):
            mid = (lo + hi) / 2
            if (row.abs() - mid).clamp_min(0).sum() > eps:
                lo = mid
            else:
                hi = mid
        out.append(row.sign() * (row.abs() - hi).clamp_min(0))
    return torch.stack(out)


def test_l1_projection_matches_bisection():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(5, 40, generator=g, dtype=torch.float64) * 2
    v[0] *= 0.01  # already inside
    ours = project_l1(v, 3.0)
    ref = naive_l1_projection(v, 3.0)
    assert torch.allclose(ours, ref, atol=1e-6)
    assert (ours.abs().sum(1) <= 3.0 + 1e-9).all()


def test_linf_and_l2_projection():
    x = torch.zeros(2, 3)
    z = torch.tensor([[0.5, -0.2, 0.05], [3.0, 4.0, 0.0]])
    assert torch.allclose(project(z, x, 0.1, "linf"), torch.tensor([[0.1, -0.1, 0.05], [0.1, 0.1, 0.0]]))
    l2 = project(z, x, 1.0, "l2")
    assert torch.allclose(l2[1], torch.tensor([0.6, 0.8, 0.0]))
    assert torch.allclose(l2[0], z[0] * min(1.0, 1.0 / z[0].norm().item()))
