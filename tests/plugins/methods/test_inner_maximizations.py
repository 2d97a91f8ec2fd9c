"""What every method's own inner maximization shares: the official TRADES-family start."""

import pytest

import advdistill as ad


def method_attacks() -> list[str]:
    """The attacks registered by the methods plugin (a method's own inner maximization)."""
    return sorted(i.name for i in ad.list_components("attack") if i.plugin == "methods")


def test_every_method_with_its_own_inner_maximization_is_found():
    assert {"trades_kl", "mart", "rslad_kl", "adaad_kl"} <= set(method_attacks())


@pytest.mark.parametrize("name", method_attacks())
def test_official_start_is_normal_and_unclamped(name):
    cfg = ad.build("attack", name).config
    assert (cfg.start, cfg.start_std, cfg.clamp_start) == ("normal", 0.001, False)
    assert (cfg.eps, cfg.step_size, cfg.steps) == (8 / 255, 2 / 255, 10)
