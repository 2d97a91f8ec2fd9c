"""Check ``zero_gradient``: the per-image input gradient against a one-image-at-a-time computation,
a healthy model passes, a rounded input (zero gradient) is flagged, the tolerance counts tiny ones."""

import pytest
import torch
import torch.nn.functional as F
from check_models import CPU, Linear, Rounded, make_data, make_inputs

import advdistill as ad
from advdistill.evaluation.checks.gradients import check_zero_gradient, input_gradient_l1
from advdistill.evaluation.context import EvalContext


def inputs(model, **config):
    return make_inputs(model.eval(), make_data(), metrics={"clean": ad.build("metric", "clean")}, **config)


def test_input_gradient_l1_matches_one_image_at_a_time():
    torch.manual_seed(0)
    model = ad.create_model("small_cnn", num_classes=4, in_chans=1, widths=[4], hidden=8).eval()
    images, labels = make_data()
    ctx = EvalContext(model=model, images=images[:10], labels=labels[:10], device=CPU, batch_size=4)
    expected = []
    for image, label in zip(images[:10], labels[:10]):
        x = (image.float() / 255).unsqueeze(0).requires_grad_(True)
        loss = F.cross_entropy(model(x), label.unsqueeze(0))
        (grad,) = torch.autograd.grad(loss, [x])
        expected.append(grad.abs().sum().item())
    assert input_gradient_l1(ctx).tolist() == pytest.approx(expected, rel=1e-5)


def test_a_healthy_model_passes():
    result = check_zero_gradient(inputs(Linear()))
    assert result.status == "passed", result.message
    assert result.values["zero"] == 0 and result.values["median_l1"] > 0


def test_rounding_the_input_zeroes_every_gradient_and_is_flagged():
    result = check_zero_gradient(inputs(Rounded(), n=20))
    assert result.status == "flagged"
    assert (result.values["zero"], result.values["exactly_zero"], result.values["share"]) == (20, 20, 100.0)
    assert "20 of the first 20 images (100.00 %)" in result.message


class Saturated(Linear):
    """Logits scaled so large that the softmax saturates: gradients tiny but not zero."""

    def forward(self, x):
        return 30.0 * self.logits(x)


def test_the_tolerance_counts_numerically_negligible_gradients():
    exact = check_zero_gradient(inputs(Saturated()))
    assert exact.values["exactly_zero"] < exact.values["n"]
    lenient = check_zero_gradient(inputs(Saturated(), zero_grad_tol=1e6, zero_grad_max_share=50.0))
    assert lenient.values["zero"] == lenient.values["n"] and lenient.status == "flagged"


def test_the_share_threshold():
    # 2 of 4 images have a zero gradient: 50 % is flagged above 40 %, not above 60 %
    class Half(Linear):
        def forward(self, x):
            keep = (torch.arange(x.shape[0]) % 2 == 0).float()[:, None]  # every other image
            return self.logits(x) * keep + self.logits(x.detach()) * (1 - keep)

    assert check_zero_gradient(inputs(Half(), n=4, zero_grad_max_share=40.0)).status == "flagged"
    assert check_zero_gradient(inputs(Half(), n=4, zero_grad_max_share=60.0)).status == "passed"
