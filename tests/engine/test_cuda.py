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


# -- the [train] speed settings on the GPU (docs/recipes.md, "Speed") --------------------------

@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_steps_agree_with_eager(distill_steps, assert_same_steps, mode):
    """Compiled student and teacher (Inductor; CUDA graphs with reduce-overhead, replayed from the
    third call on) give the eager steps' losses and weights, float32, over four steps."""
    train = {"device": "cuda", "amp": False}
    eager = distill_steps("eager", steps=4, **train)
    torch._dynamo.reset()
    compiled = distill_steps(f"compiled-{mode}", steps=4, compile=True, compile_teacher=True, compile_mode=mode,
                             **train)
    assert_same_steps(eager, compiled, rtol=1e-3, atol=1e-4)


def test_compiled_bf16_steps_stay_close_to_eager(distill_steps, assert_same_steps):
    """With amp (bf16) the compiled step differs from eager by bf16 rounding only."""
    eager = distill_steps("eager", steps=3, device="cuda")
    torch._dynamo.reset()
    compiled = distill_steps("compiled", steps=3, device="cuda", compile=True, compile_teacher=True)
    assert_same_steps(eager, compiled, rtol=3e-2, atol=3e-3)


def test_bf16_teacher_computes_what_amp_computes(distill_steps, assert_same_steps):
    from advdistill.engine.speed import BF16Teacher

    amp = distill_steps("amp", steps=2, device="cuda")
    bf16 = distill_steps("bf16", steps=2, device="cuda", teacher_bf16=True)
    trainer = bf16[0]
    assert isinstance(trainer.step_teacher, BF16Teacher) and not isinstance(trainer.teacher, BF16Teacher)
    assert all(p.dtype == torch.float32 for p in trainer.teacher.parameters())  # evaluation stays float32
    assert_same_steps(amp, bf16, rtol=1e-2, atol=1e-3)


def test_fused_sgd_and_cudnn_benchmark(distill_steps, assert_same_steps):
    saved = torch.backends.cudnn.benchmark
    try:
        base = distill_steps("base", steps=2, device="cuda", amp=False)
        fast = distill_steps("fast", steps=2, device="cuda", amp=False, optimizer_impl="fused",
                             cudnn_benchmark=True)
        assert torch.backends.cudnn.benchmark and fast[0].optimizer.defaults["fused"]
    finally:
        torch.backends.cudnn.benchmark = saved
    assert_same_steps(base, fast, rtol=1e-3, atol=1e-4)
