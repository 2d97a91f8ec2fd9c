"""AutoAttack's flags on the model: randomized, probabilities instead of logits, gradients in the forward."""

import sys

import torch
from check_models import Dropout, Linear, Purifying, Softmax, make_data, make_inputs

import advdistill as ad
from advdistill.evaluation.checks.model import check_deterministic, check_inference_gradients, check_logits


def inputs(model, **config):
    return make_inputs(model.eval(), make_data(), metrics={"clean": ad.build("metric", "clean")}, **config)


def test_a_deterministic_model_passes():
    result = check_deterministic(inputs(Linear()))
    assert result.status == "passed", result.message
    assert result.values["changed_predictions"] == 0 and result.values["max_logit_difference"] == 0.0


def test_a_randomized_model_is_flagged_with_its_numbers():
    result = check_deterministic(inputs(Dropout()))
    assert result.status == "flagged"
    assert result.values["max_logit_difference"] > 1e-4
    assert "randomized" in result.message


class Jitter(Linear):
    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        logits = self.logits(x)
        return logits + self.size * logits.abs().amax() * torch.randn_like(logits)


def test_differences_below_the_tolerance_pass_and_above_it_flag():
    assert check_deterministic(inputs(Jitter(1e-7))).status == "passed"
    assert check_deterministic(inputs(Jitter(1e-7), determinism_tol=1e-9)).status == "flagged"


def test_logits_pass_and_probabilities_are_flagged():
    assert check_logits(inputs(Linear())).status == "passed"
    result = check_logits(inputs(Softmax()))
    assert result.status == "flagged" and "probabilities" in result.message
    assert result.values["max_row_sum_error"] < 1e-5


class LogSoftmax(Linear):
    def forward(self, x):
        return self.logits(x).log_softmax(dim=1)


def test_log_probabilities_are_logits_for_the_attacks():
    assert check_logits(inputs(LogSoftmax())).status == "passed"


def test_a_forward_pass_without_gradients_passes():
    result = check_inference_gradients(inputs(Linear()))
    assert result.status == "passed" and result.values["calls"] == {}


def test_a_forward_pass_computing_gradients_is_flagged():
    result = check_inference_gradients(inputs(Purifying()))
    assert result.status == "flagged"
    assert result.values["calls"] == {"torch.autograd.grad": 1}


class Backward(Linear):
    def forward(self, x):
        z = x.detach().requires_grad_(True)
        with torch.enable_grad():
            self.logits(z).sum().backward()
        return self.logits(x - 0.01 * z.grad)


def test_tensor_backward_in_the_forward_pass_is_flagged_and_the_profiler_restored():
    before = sys.getprofile()
    result = check_inference_gradients(inputs(Backward()))
    assert result.status == "flagged"
    assert result.values["calls"]["Tensor.backward"] == 1
    assert sys.getprofile() is before
