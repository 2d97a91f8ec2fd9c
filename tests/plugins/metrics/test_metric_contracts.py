"""Every registered metric keeps the metric contract (advdistill.testing.check_metric): report keys
with finite numbers, the same report twice, modes, flags and global RNGs left alone."""

import pytest

import advdistill as ad
from advdistill.testing import check_metric

QUICK_AA = {"version": "custom", "attacks": ["apgd-ce"], "n_iter": 2, "backend": "pyautoattack"}
#: (parameters, report keys) with few steps (a new metric must be added here)
METRICS = {
    "clean": ({}, ["clean"]),
    "pgd": ({"steps": 2}, ["pgd2"]),
    "pgd_l1": ({"steps": 2}, ["pgd_l1"]),
    "pgd_l2": ({"steps": 2}, ["pgd_l2"]),
    "autoattack": (QUICK_AA, ["autoattack"]),
    "eps_curve": ({"eps": ["4/255", "8/255"], "steps": 2, "autoattack": QUICK_AA}, ["eps_curve"]),
    "grad_alignment": ({}, ["gd", "gc"]),
    "pointwise": ({"adv_steps": 2}, ["pointwise_zero", "pointwise_uniform", "pointwise_adv"]),
    "transfer": ({"surrogate": "teacher", "steps": 2, "n_neighbors": 2}, ["transfer_vmi_fgsm"]),
    "linearity": ({}, ["linearity_remainder"]),
}


def test_every_metric_is_covered():
    names = {i.name for i in ad.list_components("metric") if i.package == "advdistill" and not i.alias_of}
    assert names == set(METRICS)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_contract(name, model, teacher, images, labels):
    params, keys = METRICS[name]
    check_metric(ad.build("metric", name, **params), model, images[:12], labels[:12], teacher=teacher, keys=keys,
                 batch_size=5)
