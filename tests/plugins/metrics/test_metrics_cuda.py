"""GPU checks of the metrics (marker `cuda`): deselected by default, run with `pytest -m cuda`.

Every metric runs on CUDA; the deterministic ones (no random start) agree with the CPU; the
AutoAttack adapter leaves the CUDA generator as it found it.
"""

import copy

import pytest
import torch

import advdistill as ad
from advdistill.evaluation.runner import run_metrics

pytestmark = pytest.mark.cuda

AA = {"version": "custom", "attacks": ["apgd-ce", "apgd-t"], "n_iter": 5, "n_restarts": 1,
      "backend": "pyautoattack"}


def all_metrics():
    return {
        "clean": ad.build("metric", "clean"),
        "pgd": ad.build("metric", "pgd", steps=5),
        "pgd_l1": ad.build("metric", "pgd", norm="l1", eps=2.0, steps=5),
        "aa": ad.build("metric", "autoattack", eps="4/255", **AA),
        "gd": ad.build("metric", "grad_alignment"),
        "pointwise": ad.build("metric", "pointwise", adv_steps=3),
        "transfer": ad.build("metric", "transfer", surrogate="teacher", steps=3, n_neighbors=4),
        "eps": ad.build("metric", "eps_curve", eps=["4/255", "8/255"], steps=3, autoattack=AA),
        "linearity": ad.build("metric", "linearity"),
    }


def test_every_metric_runs_on_cuda_and_deterministic_ones_match_the_cpu(model, teacher, images, labels):
    cuda = torch.device("cuda")
    on_gpu = copy.deepcopy(model).to(cuda), copy.deepcopy(teacher).to(cuda)
    values, errors, _ = run_metrics(on_gpu[0], images, labels, all_metrics(), device=cuda, teacher=on_gpu[1],
                                    batch_size=10, show_progress=False)
    assert errors == {}
    cpu, cpu_errors, _ = run_metrics(model, images, labels, {"clean": ad.build("metric", "clean"),
                                                             "gd": ad.build("metric", "grad_alignment")},
                                     device=torch.device("cpu"), teacher=teacher, batch_size=10,
                                     show_progress=False)
    assert cpu_errors == {} and values["clean"] == cpu["clean"] == 100.0
    assert values["gd"] == pytest.approx(cpu["gd"], rel=1e-3)
    assert values["gc"] == pytest.approx(cpu["gc"], abs=1e-3)
    for key in ("pgd5", "pgd_l1", "autoattack", "transfer_vmi_fgsm"):
        assert 0 <= values[key] <= 100, key
    assert values["autoattack"] <= values["pgd5"] + 100 / 24  # one image of slack: different random starts
    assert values["linearity_remainder"] > 0 and values["pointwise_zero"] > 0


def test_autoattack_restores_the_cuda_generator(model, images, labels):
    from advdistill.evaluation.context import EvalContext

    cuda = torch.device("cuda")
    ctx = EvalContext(model=copy.deepcopy(model).to(cuda), images=images, labels=labels, device=cuda,
                      batch_size=12, show_progress=False)
    torch.cuda.manual_seed(77)
    before = torch.cuda.get_rng_state()
    first = ad.build("metric", "autoattack", eps="4/255", seed=1, **AA).evaluate(ctx)
    assert torch.equal(torch.cuda.get_rng_state(), before)
    assert ad.build("metric", "autoattack", eps="4/255", seed=1, **AA).evaluate(ctx) == first
