"""metric_info: how many images each number is over, and whether it is an accuracy."""

from types import SimpleNamespace

import torch

from advdistill.evaluation.info import metric_info


def test_a_limited_autoattack_number_is_an_accuracy_over_its_first_images():
    # AutoAttack with limit = 10 attacks the first 10 of 100 images and records no per-image flags
    metrics = {"clean": SimpleNamespace(config=None), "aa": SimpleNamespace(config=SimpleNamespace(limit=10))}
    values = {"clean": 80.0, "autoattack": 40.0, "autoattack_n": 10}
    origins = {"clean": "clean", "autoattack": "aa", "autoattack_n": "aa"}
    threats = {"autoattack": {"norm": "linf", "eps": 8 / 255, "source": "recipe", "attack": "autoattack"}}
    info = metric_info(values, metrics, {"clean": "clean", "aa": "autoattack"}, origins, {},
                       {"clean": torch.ones(100, dtype=torch.bool)}, threats, n_examples=100, evaluated_at="t")
    assert (info["autoattack"]["n_examples"], info["autoattack"]["unit"]) == (10, "%")
    assert (info["clean"]["n_examples"], info["clean"]["unit"]) == (100, "%")
    assert info["autoattack_n"]["unit"] is None and info["autoattack"]["threat"]["norm"] == "linf"
    # without a limit, a key that happens to end in _n changes nothing
    metrics["aa"] = SimpleNamespace(config=SimpleNamespace(limit=None))
    info = metric_info(values, metrics, {}, origins, {}, {"clean": torch.ones(100, dtype=torch.bool)}, threats,
                       n_examples=100, evaluated_at="t")
    assert (info["autoattack"]["n_examples"], info["autoattack"]["unit"]) == (100, None)
