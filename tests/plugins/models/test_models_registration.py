"""Every registered architecture: builds through timm, runs channels_last and under bf16 autocast."""

import pytest
import torch

import advdistill as ad
from advdistill.plugins import get_registry

# small instances of each family keep this fast; the full-size ones are checked per family
SMALL = {
    "small_cnn": {},
    "cifar_resnet18": {},
    "cifar_mobilenetv2": {},
    "resnet50": {},
    "wrn_34_10": None,  # full size only; covered by wideresnet below (same class)
    "wideresnet": {"depth": 10, "widen_factor": 2, "sub_block1": True},
    "dm_wrn_28_10": None,  # covered by dm_wideresnet (same class)
    "dm_wideresnet": {"depth": 10, "width": 2},
    "timm:resnet18": {"stem": "cifar"},
}


def test_every_registered_model_is_covered_and_summarised():
    registry = get_registry()
    ours = {info.name for info in ad.list_components("model") if info.package == "advdistill"}
    assert ours == {name.partition(":")[0] for name in SMALL}
    for name in ours:
        assert registry.spec("model", name).summary


@pytest.mark.parametrize("kind", [k for k, v in SMALL.items() if v is not None])
def test_channels_last_and_bf16_autocast(kind):
    torch.manual_seed(0)
    model = ad.create_model(kind, num_classes=10, **SMALL[kind]).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        reference = model(x)
        model = model.to(memory_format=torch.channels_last)
        cl = model(x.contiguous(memory_format=torch.channels_last))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(cl, reference, rtol=1e-4, atol=1e-4)
    assert low.dtype == torch.bfloat16 and low.shape == (2, 10) and torch.isfinite(low).all()
    # bf16 keeps ~3 significant digits: logits agree to a few percent of their spread
    assert (low.float() - reference).abs().max() <= 0.1 * reference.abs().max() + 0.05


@pytest.mark.parametrize("kind", ["cifar_resnet18", "wideresnet", "dm_wideresnet", "cifar_mobilenetv2"])
def test_input_gradients_flow_for_attacks(kind):
    model = ad.create_model(kind, num_classes=10, **SMALL[kind]).eval()
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
