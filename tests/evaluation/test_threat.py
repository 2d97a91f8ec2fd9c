"""Robust metrics attack at the run's threat model (the recipe's [attack] norm and ε) unless given
their own, and every robust number carries its ε and norm into report.json, report.md and the
sanity checks."""

import json
import sys
from types import SimpleNamespace

import pytest

import advdistill as ad
from advdistill.evaluation.threat import PAPER_EPS, ThreatModel, resolve_threat, run_threat, threat_text
from advdistill.testing import TINY_RECIPE

QUICK_AA = {"version": "custom", "attacks": ["apgd-ce"], "n_iter": 3, "n_restarts": 1, "backend": "pyautoattack"}


def recipe(eps, norm="linf"):
    return SimpleNamespace(attack=SimpleNamespace(config=SimpleNamespace(eps=eps, norm=norm)))


def test_the_run_threat_model_is_its_attack_s_norm_and_eps():
    assert run_threat(recipe(0.2)) == ThreatModel("linf", 0.2, "[attack]")
    assert run_threat(recipe(0.5, "l2")) == ThreatModel("l2", 0.5, "[attack]")
    assert run_threat(None) is None and run_threat(SimpleNamespace(attack=None)) is None
    assert run_threat(recipe(0.0)) is None  # no perturbation: no threat model


@pytest.mark.parametrize(("run", "norm", "eps", "expected"), [
    (recipe(0.2), None, None, ("linf", 0.2, "[attack]")),
    (recipe(0.2), None, 0.1, ("linf", 0.1, "metric")),
    (recipe(0.2), "l2", None, ("l2", PAPER_EPS["l2"], "default")),  # another norm: the paper's radius for it
    (recipe(0.5, "l2"), "l2", None, ("l2", 0.5, "[attack]")),
    (recipe(0.5, "l2"), None, None, ("l2", 0.5, "[attack]")),
    (None, None, None, ("linf", 8 / 255, "default")),
])
def test_a_metric_s_own_settings_come_first_then_the_run_then_the_paper(run, norm, eps, expected):
    threat = resolve_threat(run, norm=norm, eps=eps)
    assert (threat.norm, threat.eps, threat.source) == (expected[0], pytest.approx(expected[1]), expected[2])


def test_threat_text():
    assert threat_text("linf", 8 / 255) == "Linf ε = 8/255" and threat_text("linf", 0.2) == "Linf ε = 0.2"
    assert str(ThreatModel("l2", 0.5)) == "L2 ε = 0.5"


def test_eval_by_kind_on_a_run_at_eps_0_2_attacks_at_0_2_everywhere(cli_runner, tiny_recipe, tmp_path, monkeypatch):
    """The demo's case: a run trained at Linf 0.2 evaluated with metrics picked by kind."""
    monkeypatch.setitem(sys.modules, "autoattack", None)
    metrics = {"pgd": {"kind": "pgd", "steps": 2}, "aa": {"kind": "autoattack", **QUICK_AA},
               "curve": {"kind": "eps_curve", "steps": 1, "autoattack": QUICK_AA}, "clean": {"kind": "clean"}}
    path = tiny_recipe(attack={**TINY_RECIPE["attack"], "eps": 0.2, "step_size": 0.05},
                       eval={**TINY_RECIPE["eval"], "at_end": False, "metrics": metrics})
    run = ad.train(path, tmp_path / "run")
    cli_runner("eval", str(run), "--limit", "16", "--checks", "--set", "eval.checks.n=16",
               "--set", "eval.checks.square_queries=5", "--set", 'eval.checks.skip=["more_steps"]')
    report = json.loads((run / "report.json").read_text())
    info = report["metric_info"]
    assert report["threat"] == {"norm": "linf", "eps": 0.2, "source": "[attack]"}
    assert info["pgd2"]["threat"] == {"norm": "linf", "eps": 0.2, "source": "[attack]"}
    assert info["autoattack"]["threat"]["eps"] == 0.2 and info["autoattack"]["attack"] == "APGD-CE"
    assert info["eps_curve"]["threat"]["eps"] == pytest.approx([0.2, 0.25, 0.3, 0.35, 0.4])
    assert [p["eps"] for p in report["metrics"]["eps_curve"]] == pytest.approx([0.2, 0.25, 0.3, 0.35, 0.4])
    assert "threat" not in info["clean"] and info["clean"]["unit"] == "%"
    # the sanity checks take the threat model from what the metrics declared
    assert report["checks"]["results"]["black_box"]["threat"] == {"norm": "linf", "eps": 0.2}
    text = (run / "report.md").read_text()
    assert "- threat model: Linf ε = 0.2 (the recipe's [attack])" in text
    assert "| last | pgd2 | 16 | Linf ε = 0.2 | PGD-2 |" in text
    assert "| last | eps_curve | 16 | Linf ε = 0.2 … 0.4 |" in text
    assert "| ε (Linf) | pgd1 | AA (APGD-CE) |" in text and "| 0.25 |" in text
