"""Fixtures of the engine tests: a distillation step from fixed seeds, for comparing settings."""

from __future__ import annotations

import pytest
import torch

import advdistill as ad
from advdistill.engine.checkpoint import save_weights
from advdistill.interfaces import Progress


@pytest.fixture
def distill_steps(tiny_recipe, tmp_path, tiny_bn_net):
    """``distill_steps(name, steps=1, **train)``: a Trainer, its losses and the student's weights
    after ``steps`` steps on one batch, from fixed seeds (``train`` adds [train] keys).

    AdaAD + IGDM with a BatchNorm student: the attack with the teacher in the loop and the student
    in eval mode, the batched teacher points, three student forwards in train mode.
    """
    torch.manual_seed(5)
    teacher_arch = {"kind": "small_cnn", "widths": [6], "hidden": 8}
    save_weights(tmp_path / "teacher.safetensors", ad.create_model("small_cnn", num_classes=4, in_chans=1,
                                                                   widths=[6], hidden=8))

    def run(name, steps=1, **train):
        from advdistill.engine.trainer import Trainer

        torch.manual_seed(0)
        recipe = tiny_recipe(
            f"{name}.toml", student={"kind": "tiny_bn_net"},
            teacher={"kind": "checkpoint", "path": str(tmp_path / "teacher.safetensors"), "model": teacher_arch},
            attack={"kind": "adaad_kl", "steps": 2}, objective={"kind": "adaad"},
            aux={"igdm": {"kind": "igdm", "alpha": 2.0}},
            train={"epochs": 1, "batch_size": 16, "device": "cpu", **train},
        )
        trainer = Trainer(ad.load_recipe(recipe), tmp_path / name)
        x, y = next(iter(trainer.train_loader))
        trainer.attack_generator.manual_seed(7)
        losses = [float(trainer.train_step(x, y, Progress(1, 1), 0.05)[0]) for _ in range(steps)]
        weights = {k: v.detach().cpu().clone() for k, v in trainer.student.state_dict().items()}
        return trainer, losses, weights

    return run


@pytest.fixture
def assert_same_steps():
    """``assert_same_steps(a, b, rtol)``: two ``distill_steps`` results agree, every loss and weight."""

    def check(a, b, rtol: float, atol: float = 1e-6) -> None:
        _, losses_a, weights_a = a
        _, losses_b, weights_b = b
        assert losses_a == pytest.approx(losses_b, rel=rtol)
        for key in weights_a:
            assert torch.allclose(weights_a[key].float(), weights_b[key].float(), rtol=rtol, atol=atol), key

    return check
