"""GPU checks of the architectures and the RobustBench loader (marker `cuda`; `pytest -m cuda`).

Full-size teachers and students in the engine's fast path: eval mode, inference mode,
channels_last and bf16 autocast on CUDA, against an fp32 reference; the teacher forward of
several perturbed copies as one batched call. Prints throughputs (run with -s to see them).
"""

import contextlib
import time

import pytest
import torch
from arch_reference import calibrate_bn

import advdistill as ad
from advdistill.torch_utils import freeze

pytestmark = pytest.mark.cuda

TEACHERS = ("wrn_34_10", "dm_wrn_28_10")
FULL = [
    ("wrn_34_10", {"sub_block1": True}, 100),
    ("dm_wrn_28_10", {}, 10),
    ("cifar_resnet18", {}, 10),
    ("cifar_mobilenetv2", {}, 100),
    ("resnet50", {}, 10),
]


def _model(kind, params, num_classes):
    torch.manual_seed(0)
    return freeze(calibrate_bn(ad.create_model(kind, num_classes=num_classes, **params)))


def _calibrated_on_gpu(kind, params, num_classes):
    """BN statistics averaged over 512 images, so eval-mode activations are well scaled."""
    torch.manual_seed(0)
    model = ad.create_model(kind, num_classes=num_classes, **params).cuda()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.rand(128, 3, 32, 32, device="cuda"))
    return freeze(model)


@pytest.mark.parametrize(("kind", "params", "num_classes"), FULL, ids=[k for k, _, _ in FULL])
def test_bf16_channels_last_inference_agrees_with_fp32(kind, params, num_classes, monkeypatch):
    assert torch.cuda.is_available(), "run `pytest -m cuda` on a machine with a CUDA GPU"
    # true fp32 on the GPU (no TF32), so that GPU and CPU must agree closely
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    model = _calibrated_on_gpu(kind, params, num_classes)
    x = torch.rand(256, 3, 32, 32, generator=torch.Generator().manual_seed(1)).cuda()
    with torch.inference_mode():
        fp32 = model(x)
        cpu = model.cpu()(x[:4].cpu())
        model = model.cuda().to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        cl = model(x_cl)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            fast = model(x_cl)
    # cuDNN fp32 vs CPU fp32, channels_last vs not: the same numbers to ~1e-3 of the logit scale
    scale = fp32.abs().max()
    assert (fp32[:4].cpu() - cpu).abs().max() <= 2e-3 * scale + 1e-4
    assert (cl - fp32).abs().max() <= 2e-3 * scale + 1e-4
    assert fast.dtype == torch.bfloat16 and torch.isfinite(fast).all()
    rel = ((fast.float() - fp32).norm() / fp32.norm()).item()
    agree = (fast.float().argmax(1) == fp32.argmax(1)).float().mean().item()
    print(f"\n{kind}: bf16 vs fp32 relative error {rel:.4f}, top-1 agreement {agree:.3f}")
    if kind in TEACHERS:
        # teachers run in bf16 in the training step: a few percent of the logits' norm, same top-1.
        # (No bound for the students: at random init, deep post-activation nets produce small logits
        # from large activations, which amplifies bf16 rounding; measured up to ~30 % on H200 for
        # resnet50 and ~12 % for cifar_mobilenetv2, ~2 % for cifar_resnet18.)
        assert rel <= 0.05 and agree >= 0.95, (rel, agree)


def test_teacher_loaded_from_a_robustbench_file_runs_batched_on_gpu(tmp_path):
    from safetensors.torch import save_file

    reference = _model("dm_wrn_28_10", {}, 10)
    folder = tmp_path / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()},
              str(folder / "Wang2023Better_WRN-28-10.safetensors"))
    teacher = ad.load_teacher("Wang2023Better_WRN-28-10", model_dir=tmp_path, dataset="cifar10")
    teacher = teacher.cuda().to(memory_format=torch.channels_last)
    x = torch.rand(32, 3, 32, 32, device="cuda")
    delta = (torch.rand_like(x) * 2 - 1) * 8 / 255
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        both = teacher(torch.cat([x + delta, x - delta]).contiguous(memory_format=torch.channels_last))
        plus = teacher((x + delta).contiguous(memory_format=torch.channels_last))
    assert both.shape == (64, 10)
    torch.testing.assert_close(both[:32].float(), plus.float(), rtol=2e-2, atol=2e-2)
    # the loaded teacher is the reference network
    with torch.inference_mode():
        torch.testing.assert_close(teacher.float()(x), reference.cuda()(x), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("kind", ["wrn_34_10", "dm_wrn_28_10"])
def test_teacher_throughput(kind):
    model = _model(kind, {}, 10).cuda()
    x = torch.rand(512, 3, 32, 32, device="cuda")
    results = {}
    for label, fmt, dtype in [("fp32", torch.contiguous_format, None),
                              ("bf16+channels_last", torch.channels_last, torch.bfloat16)]:
        model = model.to(memory_format=fmt)
        xin = x.contiguous(memory_format=fmt)
        amp = torch.autocast("cuda", dtype=dtype) if dtype else contextlib.nullcontext()
        with torch.inference_mode(), amp:
            for _ in range(3):
                model(xin)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(10):
                model(xin)
            torch.cuda.synchronize()
        results[label] = 10 * x.shape[0] / (time.perf_counter() - start)
    print(f"\n{kind} teacher forward, batch 512, {torch.cuda.get_device_name()}: "
          + ", ".join(f"{k} {v:,.0f} img/s" for k, v in results.items()))
    assert results["bf16+channels_last"] > results["fp32"]
