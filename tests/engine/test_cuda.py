"""GPU checks (marker `cuda`): deselected by default, run with `pytest -m cuda` on a CUDA machine.

They check what CPU tests cannot: bf16 autocast and channels_last in the real step, and that
the training step never synchronises the host with the GPU.
"""

import json

import pytest
import torch

import advdistill as ad
from advdistill.engine.trainer import Trainer
from advdistill.interfaces import Progress

pytestmark = pytest.mark.cuda


def _trainer(tiny_recipe, tmp_path, name, **tables):
    tables.setdefault("train", {"epochs": 1, "batch_size": 16, "log_every": 2, "device": "cuda"})
    return Trainer(ad.load_recipe(tiny_recipe(f"{name}.toml", **tables)), tmp_path / name)


def test_cuda_is_there():
    assert torch.cuda.is_available(), "run `pytest -m cuda` on a machine with a CUDA GPU"


def test_step_makes_no_host_sync_with_amp_and_channels_last(tiny_recipe, tmp_path):
    ad.train(tiny_recipe("teacher.toml", train={"epochs": 1, "batch_size": 16, "device": "cuda"}), tmp_path / "t")
    trainer = _trainer(
        tiny_recipe, tmp_path, "s",
        teacher={"kind": "checkpoint", "path": str(tmp_path / "t" / "checkpoints" / "last.safetensors")},
        attack={"kind": "rslad_kl", "steps": 3}, objective={"kind": "rslad"},
        aux={"igdm": {"kind": "igdm"}},
    )
    assert trainer.amp and trainer.channels_last
    batches = list(trainer.train_loader)[:3]
    progress = Progress(epoch=1, epochs=1, steps_per_epoch=len(batches))
    trainer.train_step(*batches[0], progress, 0.01)  # warm-up (allocator, cuDNN autotuning)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [trainer.train_step(x, y, progress, 0.01)[0] for x, y in batches[1:]]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert all(torch.isfinite(loss) for loss in losses)


def test_cuda_and_cpu_agree_without_amp(tiny_recipe, tmp_path):
    losses = {}
    for device in ("cpu", "cuda"):
        trainer = _trainer(tiny_recipe, tmp_path, device,
                           train={"epochs": 1, "batch_size": 16, "device": device, "amp": False})
        x, y = next(iter(trainer.train_loader))
        losses[device] = trainer.train_step(x, y, Progress(epoch=1, epochs=1), 0.01)[0].item()
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-3)


def test_full_run_and_report_on_cuda(tiny_recipe, tmp_path):
    run = ad.train(tiny_recipe(train={"epochs": 2, "batch_size": 16, "device": "cuda"}), tmp_path / "run")
    report = json.loads((run / "report.json").read_text())
    assert report["device"] == torch.cuda.get_device_name(0)
    assert 0 <= report["metrics"]["pgd2"] <= report["metrics"]["clean"] <= 100
