"""How long does standard AutoAttack take on 10,000 CIFAR images? Times the ``autoattack`` metric.

The model is one of the paper's architectures with random weights, wrapped so that every
prediction keeps a large margin: no attack ever succeeds, so each of the four attacks of the
standard version (APGD-CE, APGD-T, FAB-T, Square) runs in full on every image. That is the
most AutoAttack can cost; a robust CIFAR model keeps about half of the images to the end, so a
real evaluation takes roughly between half of this and all of it.

A full worst-case run of a WideResNet-28-10 on 10,000 images takes hours, so the script measures
less and extrapolates, exactly where the cost is linear: with no image dropping out, the time is
``a + b·f`` when every attack's iterations and queries are scaled by ``f`` (APGD/FAB iterations
100·f, Square queries 5000·f), and proportional to the number of images at a fixed batch size.
It times ``--fractions`` (two values) on ``--n`` images (default: one automatic batch), fits the
line, and reports the time at ``f = 1`` for ``--total`` images. ``--fractions 1`` with
``--n 10000`` measures the full run instead.

The batch size is the metric's automatic choice from free GPU memory unless ``--batch-size``.

Examples::

    python benchmarks/autoattack_time.py --model resnet18 --device cuda
    python benchmarks/autoattack_time.py --model wrn-28-10 --device cuda --json
    python benchmarks/autoattack_time.py --model small --device cpu --n 16 --fractions 0.01 0.02  # seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import count, hardware, synchronize

import advdistill as ad
from advdistill.evaluation.batching import auto_batch_size
from advdistill.evaluation.context import EvalContext
from advdistill.torch_utils import freeze

MODELS = {
    "resnet18": ("cifar_resnet18", {}),
    "wrn-28-10": ("dm_wrn_28_10", {}),
    "small": ("small_cnn", {"widths": [8, 16], "hidden": 32}),  # for a quick CPU run
}


class Unbreakable(nn.Module):
    """``model(x)`` plus a margin of ``margin`` on class 0: every image stays correct (label 0).

    The model's forward and backward still run in full, so every attack costs what it costs on
    an image it cannot break.
    """

    def __init__(self, model: nn.Module, margin: float = 1e3) -> None:
        super().__init__()
        self.model = model
        self.margin = margin

    def forward(self, x: Tensor) -> Tensor:
        logits = self.model(x).float()
        return logits + self.margin * nn.functional.one_hot(torch.zeros_like(logits[:, 0], dtype=torch.long),
                                                            logits.shape[1]).to(logits.dtype)


def run(model: nn.Module, images: Tensor, labels: Tensor, fraction: float, batch_size: int,
        device: torch.device) -> tuple[float, float]:
    """Seconds and robust accuracy (%) of standard AutoAttack with iterations and queries scaled by ``fraction``."""
    metric = ad.build("metric", "autoattack", n_iter=max(1, round(100 * fraction)),
                      n_queries=max(1, round(5000 * fraction)), batch_size=batch_size)
    ctx = EvalContext(model=model, images=images, labels=labels, device=device, batch_size=batch_size,
                      show_progress=False)
    synchronize(device)
    start = time.perf_counter()
    accuracy = metric.evaluate(ctx)["autoattack"]
    synchronize(device)
    return time.perf_counter() - start, accuracy


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="resnet18")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--total", type=count(1), default=10_000, help="images the estimate is for (default 10,000)")
    p.add_argument("--n", type=count(1), help="images actually attacked (default: one automatic batch, <= total)")
    p.add_argument("--batch-size", type=count(1), help="AutoAttack batch (default: automatic from free memory)")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.02, 0.06],
                   help="iteration/query scales timed (two for the fit, or 1 for a full run)")
    p.add_argument("--threads", type=count(1))
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not all(0 < f <= 1 for f in args.fractions) or len(args.fractions) not in (1, 2):
        p.error("--fractions: one or two values in (0, 1]")
    if len(args.fractions) == 1 and args.fractions[0] != 1:
        p.error("--fractions: a single value must be 1 (a full run); give two to extrapolate")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    name, params = MODELS[args.model]
    model = freeze(Unbreakable(ad.create_model(name, num_classes=10, **params))).to(device)
    g = torch.Generator().manual_seed(0)
    all_images = (torch.rand((args.total, 3, 32, 32), generator=g) * 255).round().to(torch.uint8)
    batch_size = args.batch_size or auto_batch_size(
        model, all_images[:16].to(device).float() / 255, default=256, n_examples=args.total
    )
    n = min(args.n or batch_size, args.total)
    images, labels = all_images[:n], torch.zeros(n, dtype=torch.long)
    times, accuracies = [], []
    for fraction in args.fractions:
        seconds, accuracy = run(model, images, labels, fraction, batch_size, device)
        times.append(seconds)
        accuracies.append(accuracy)
    if len(times) == 2:
        (f1, f2), (t1, t2) = args.fractions, times
        slope = (t2 - t1) / (f2 - f1)
        full = t1 + slope * (1 - f1)
    else:
        full = times[0]
    estimate = full * args.total / n
    result = {
        "model": args.model, "device": hardware(device), "torch": torch.__version__, "images_attacked": n,
        "batch_size": batch_size, "fractions": args.fractions, "seconds": [round(t, 3) for t in times],
        "robust_accuracy": accuracies, "estimated_full_s_for_n": round(full, 1),
        "total_images": args.total, "estimated_s": round(estimate, 1),
        "measured": len(times) == 1 and n == args.total,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"standard AutoAttack (Linf 8/255), {args.model} with random weights, every image unbreakable; "
              f"{result['device']}, batch {batch_size}")
        for f, t in zip(args.fractions, times):
            print(f"  {n} images, iterations/queries x{f:g}: {t:.1f} s")
        kind = "measured" if result["measured"] else "estimated (linear in the scale and in the images)"
        print(f"  {args.total} images, full standard budget: {estimate:.0f} s = {estimate / 3600:.2f} h ({kind})")
    if any(a != 100.0 for a in accuracies):  # the wrapper must keep every image: else the estimate is wrong
        print("error: some images were broken; the worst-case assumption does not hold", file=sys.stderr)
        sys.exit(1)
    return result


if __name__ == "__main__":
    main()
