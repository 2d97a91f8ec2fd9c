"""GPU check of the sanity checks (marker `cuda`): deselected by default, run with `pytest -m cuda`."""

import copy

import pytest
import torch
from check_models import Linear, Rounded, make_data

import advdistill as ad
from advdistill.evaluation.checks import run_checks
from advdistill.evaluation.context import EvalContext
from advdistill.evaluation.runner import run_metrics
from advdistill.recipe.schema import ChecksConfig

pytestmark = pytest.mark.cuda


def _checks(model, teacher, device):
    images, labels = make_data()
    metrics = {"clean": ad.build("metric", "clean"), "pgd": ad.build("metric", "pgd", steps=10, random_start=False)}
    records, threats = {}, {}
    model, teacher = copy.deepcopy(model).to(device), copy.deepcopy(teacher).to(device)
    values, errors, _ = run_metrics(model, images, labels, metrics, device=device, batch_size=16, records=records,
                                    threats=threats, show_progress=False)
    assert errors == {}
    ctx = EvalContext(model=model, images=images, labels=labels, device=device, batch_size=16, teacher=teacher,
                      show_progress=False)
    return run_checks(ctx, metrics, values, records, ChecksConfig(n=32, black_box="both", square_queries=20),
                      threats=threats)


@pytest.mark.parametrize("model_class", [Linear, Rounded])
def test_every_check_runs_on_cuda_with_the_cpu_outcome(model_class):
    assert torch.cuda.is_available(), "run `pytest -m cuda` on a machine with a CUDA GPU"
    model, teacher = model_class().eval(), Linear(seed=5).eval()
    on_gpu = _checks(model, teacher, torch.device("cuda"))
    on_cpu = _checks(model, teacher, torch.device("cpu"))
    assert "not run" not in {r["status"] for r in on_gpu["results"].values()}, on_gpu
    # checks without random draws (random starts and Square's draws differ between devices):
    # the same outcome and the same numbers on both devices
    for name in ("ordering", "unbounded", "zero_gradient", "deterministic", "logits", "inference_gradients"):
        assert on_gpu["results"][name]["status"] == on_cpu["results"][name]["status"], name
    for name in ("unbounded", "zero_gradient"):
        assert on_gpu["results"][name].get("accuracy") == on_cpu["results"][name].get("accuracy")
        assert on_gpu["results"][name].get("zero") == on_cpu["results"][name].get("zero")
