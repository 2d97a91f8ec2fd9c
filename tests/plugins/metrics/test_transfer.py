"""VMI-FGSM against torchattacks.VMIFGSM, and the transfer metric with its surrogate."""

from types import SimpleNamespace

import pytest
import torch
import torchattacks

import advdistill as ad
from advdistill.engine.checkpoint import save_weights
from advdistill.errors import RecipeError
from advdistill.testing import check_attack
from advdistill_plugins.attacks.vmi_fgsm import VMIFGSM, VMIFGSMConfig


class Recorder(torch.nn.Module):
    """Passes inputs through and keeps a copy of each batch it sees."""

    def __init__(self, model):
        super().__init__()
        self.model, self.inputs = model, []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.model(x)


class ReplayedNeighbours(VMIFGSM):
    """Our VMI-FGSM, but with the neighbour points torchattacks drew (its global-RNG noise)."""

    def __init__(self, config, neighbours):
        super().__init__(config)
        self.steps = iter(neighbours)

    def neighbors(self, x_adv, generator):
        return torch.stack(next(self.steps))


def test_vmi_fgsm_equals_torchattacks(make_ctx, model):
    ctx = make_ctx()
    x, y = ctx.images[:8].float() / 255, ctx.labels[:8]
    eps, steps, n, beta = 8 / 255, 4, 3, 1.5
    recorder = Recorder(model).eval()  # torchattacks restores the wrapper's mode onto the model afterwards
    torch.manual_seed(0)
    reference = torchattacks.VMIFGSM(recorder, eps=eps, alpha=eps / steps, steps=steps, decay=1.0, N=n,
                                     beta=beta)(x, y)
    calls = recorder.inputs
    assert len(calls) == steps * (1 + n)
    neighbours = [calls[s * (1 + n) + 1 : (s + 1) * (1 + n)] for s in range(steps)]
    ours = ReplayedNeighbours(VMIFGSMConfig(eps=eps, steps=steps, n_neighbors=n, beta=beta), neighbours)
    x_adv = ours.perturb(model, x, y)
    assert not model.training
    assert torch.allclose(x_adv, reference, atol=1e-6)
    assert (x_adv - x).abs().max() > eps / 2


def test_neighbours_are_uniform_in_the_beta_eps_box():
    attack = VMIFGSM(VMIFGSMConfig(eps=0.1, n_neighbors=50, beta=1.5))
    x_adv = torch.full((2, 1, 4, 4), 0.5)
    points = attack.neighbors(x_adv, torch.Generator().manual_seed(0))
    assert points.shape == (50, 2, 1, 4, 4)
    offsets = points - x_adv
    assert offsets.abs().max() <= 0.15 and offsets.abs().max() > 0.14 and abs(offsets.mean()) < 0.01


@pytest.mark.parametrize("per_pass", [None, 2])
def test_vmi_fgsm_contract_and_chunking(make_ctx, model, per_pass):
    ctx = make_ctx()
    x, y = ctx.images[:6].float() / 255, ctx.labels[:6]
    attack = ad.build("metric", "transfer", surrogate="teacher", n_neighbors=5, steps=3,
                      neighbors_per_pass=per_pass).attack()
    assert attack.config.eps == pytest.approx(16 / 255)
    x_adv = check_attack(attack, model, x, y)
    everything = ad.build("metric", "transfer", surrogate="teacher", n_neighbors=5, steps=3).attack()
    gen = torch.Generator().manual_seed(1234)
    assert torch.allclose(x_adv, everything.perturb(model, x, y, generator=gen), atol=1e-6)


def test_transfer_metric_crafts_on_the_surrogate(make_ctx, model, teacher):
    """Examples made on the surrogate (here the teacher), accuracy of the evaluated model."""
    ctx = make_ctx(seed=1)
    metric = ad.build("metric", "transfer", surrogate="teacher", n_neighbors=3, steps=3, eps="8/255")
    value = metric.evaluate(ctx)["transfer_vmi_fgsm"]
    attack, gen, correct = metric.attack(), ctx.generator(stream=6), 0
    for x, y in ctx.batches():
        correct += (model(attack.perturb(teacher, x, y, generator=gen)).argmax(1) == y).sum().item()
    assert value == 100.0 * correct / ctx.n_examples
    crafted_on_model = ad.build("metric", "transfer", surrogate="teacher", n_neighbors=3, steps=3,
                                eps="8/255").evaluate(make_ctx(seed=1, teacher=model))["transfer_vmi_fgsm"]
    assert crafted_on_model < 100  # white-box on the model itself: it must hurt


def test_surrogate_from_a_checkpoint_table(make_ctx, tmp_path, monkeypatch):
    arch = {"kind": "small_cnn", "widths": [4], "hidden": 8}
    surrogate = ad.create_model("small_cnn", num_classes=4, in_chans=1, widths=[4], hidden=8)
    save_weights(tmp_path / "s.safetensors", surrogate)
    table = {"kind": "checkpoint", "path": str(tmp_path / "s.safetensors"), "model": arch}
    metric = ad.build("metric", "transfer", n_neighbors=2, steps=2, surrogate=table)
    ctx = make_ctx()
    loaded = metric.surrogate(ctx)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    x = ctx.images[:2].float() / 255
    assert torch.equal(loaded(x), surrogate.eval()(x))
    assert 0 <= metric.evaluate(ctx)["transfer_vmi_fgsm"] <= 100


def test_the_surrogate_is_required_and_checked():
    with pytest.raises(RecipeError, match=r"missing required key.*surrogate"):
        ad.build("metric", "transfer")
    with pytest.raises(RecipeError, match="Did you mean 'checkpoint'"):
        ad.build("metric", "transfer", surrogate={"kind": "checkpt", "path": "x"})
    with pytest.raises(RecipeError, match="surrogate"):
        ad.build("metric", "transfer", surrogate="resnet50")


def test_teacher_surrogate_without_a_teacher_is_explained(make_ctx):
    metric = ad.build("metric", "transfer", surrogate="teacher")
    with pytest.raises(RecipeError, match="no \\[teacher\\]"):
        metric.surrogate(make_ctx(teacher=None))


def run_recipe(eps, norm="linf"):
    """What the metrics read of a recipe: its [attack] (the run's threat model)."""
    return SimpleNamespace(attack=SimpleNamespace(config=SimpleNamespace(eps=eps, norm=norm)))


def test_transfer_defaults_to_twice_the_run_s_eps(make_ctx):
    metric = ad.build("metric", "transfer", surrogate="teacher", steps=2, n_neighbors=2)
    assert metric.threat(make_ctx(recipe=run_recipe(0.2))).eps == pytest.approx(0.4)
    assert metric.threat(make_ctx()).eps == pytest.approx(16 / 255)  # the paper's
    assert metric.threat(make_ctx(recipe=run_recipe(0.5, "l2"))).eps == pytest.approx(16 / 255)
    ctx = make_ctx(recipe=run_recipe(0.2))
    metric.evaluate(ctx)
    assert ctx.threats["transfer_vmi_fgsm"]["eps"] == pytest.approx(0.4)
