"""Does our ``autoattack`` metric cost more than calling AutoAttack directly? Prints the time ratio.

Both sides attack the same model, the same images and labels with the same seed and settings:

- direct: ``pyautoattack.AutoAttack(model, ...).run_standard_evaluation(x, y, batch_size=B)`` on a
  float tensor prepared beforehand (what a user of the package would write);
- ours: ``advdistill.build("metric", "autoattack", ...).evaluate(ctx)`` on the uint8 test images of an
  ``EvalContext`` (conversion, RNG save/restore and progress forwarding included).

Rounds alternate the order of the two; times are wall-clock (``torch.cuda.synchronize`` on GPU).
The ratio ours/direct is reported for the fastest and the median round; the criterion is the
fastest-round ratio ≤ 1.05 (the fastest round is the least disturbed by other load). Both sides
must also give the same robust accuracy. The model is randomly initialised and the labels
are its own clean predictions, so every image is attacked (``--model``: a linear model most
images fall to quickly, or a random CNN that no attack breaks, so every attack runs in full).

Examples::

    python benchmarks/autoattack_adapter.py                          # seconds on 2 CPU cores
    python benchmarks/autoattack_adapter.py --model cnn --n 32 --n-iter 10 --threads 1
    python benchmarks/autoattack_adapter.py --device cuda --n 2000 --version standard --n-iter 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import timed

import advdistill as ad
from advdistill.evaluation.context import EvalContext
from advdistill.torch_utils import freeze


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--n", type=int, default=512, help="test images")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--model", default="linear", choices=["linear", "cnn"],
                   help="linear: most images fall to the first attack (short runs, where a fixed overhead "
                        "shows most); cnn: a random small CNN no attack breaks (every attack runs in full)")
    p.add_argument("--width", type=int, default=16, help="cnn: first conv width (second: 2x)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--version", default="custom", choices=["standard", "custom"],
                   help="custom runs --attacks; standard is the full AutoAttack")
    p.add_argument("--attacks", default="apgd-ce,apgd-t", help="comma-separated, with --version custom")
    p.add_argument("--n-iter", type=int, default=20, help="APGD/FAB iterations (standard: 100)")
    p.add_argument("--n-queries", type=int, default=None, help="Square queries (standard: 5000)")
    p.add_argument("--eps", type=float, default=8 / 255)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p.parse_args(argv)


def settings(args: argparse.Namespace) -> dict:
    """The metric's parameters; the direct call is configured to match them exactly."""
    params = {"eps": args.eps, "version": args.version, "n_iter": args.n_iter, "seed": args.seed,
              "batch_size": args.batch_size, "backend": "pyautoattack"}
    if args.version == "custom":
        params["attacks"] = [a.strip() for a in args.attacks.split(",") if a.strip()]
        params["n_restarts"] = 1
    if args.n_queries is not None:
        params["n_queries"] = args.n_queries
    return params


def direct(model, x, y, args, params) -> float:
    """Robust accuracy (%) from the package itself, configured as our metric configures it."""
    from pyautoattack import AutoAttack

    aa = AutoAttack(model, attacks=params.get("attacks"), device=x.device, eps=args.eps, norm="Linf",
                    seed=args.seed, version=args.version)
    for apgd in (aa.apgd, aa.apgd_targeted):  # APGD derives its checkpoints from n_iter in __init__
        apgd.n_iter = apgd.n_iter_orig = args.n_iter
        apgd.n_iter_2 = max(int(0.22 * args.n_iter), 1)
        apgd.n_iter_min = max(int(0.06 * args.n_iter), 1)
        apgd.size_decr = max(int(0.03 * args.n_iter), 1)
    aa.fab.n_iter = args.n_iter
    if "n_restarts" in params:
        aa.apgd.n_restarts = params["n_restarts"]
    for attack in (aa.apgd_targeted, aa.fab):
        attack.n_target_classes = min(attack.n_target_classes, args.num_classes - 1)
    if args.n_queries is not None:
        aa.square.n_queries = args.n_queries
    _, y_adv = aa.run_standard_evaluation(x, y, batch_size=args.batch_size)
    return 100.0 * (y_adv == y).sum().item() / y.shape[0]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    if args.model == "cnn":
        model = ad.create_model("small_cnn", num_classes=args.num_classes, in_chans=3,
                                widths=[args.width, 2 * args.width], hidden=4 * args.width)
    else:
        features = 3 * args.image_size**2
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(features, args.num_classes))
    model = freeze(model).to(device)
    g = torch.Generator().manual_seed(args.seed)
    shape = (args.n, 3, args.image_size, args.image_size)
    images = (torch.rand(shape, generator=g) * 255).round().to(torch.uint8)
    x = images.to(device).float() / 255
    with torch.no_grad():
        y = torch.cat([model(b).argmax(1) for b in x.split(args.batch_size)])
    params = settings(args)
    metric = ad.build("metric", "autoattack", **params)
    ctx = EvalContext(model=model, images=images, labels=y.cpu(), device=device, batch_size=args.batch_size,
                      seed=args.seed, show_progress=False)

    def ours() -> float:
        return metric.evaluate(ctx)["autoattack"]

    def theirs() -> float:
        return direct(model, x, y, args, params)

    timed(ours, device)  # warm-up (allocator, kernels, imports)
    times = {"direct": [], "ours": []}
    results = {"direct": set(), "ours": set()}
    for r in range(args.rounds):
        order = [("direct", theirs), ("ours", ours)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            seconds, accuracy = timed(fn, device)
            times[name].append(seconds)
            results[name].add(accuracy)
    best = {k: min(v) for k, v in times.items()}
    median = {k: statistics.median(v) for k, v in times.items()}
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"cpu ({torch.get_num_threads()} threads)"
    summary = {
        "device": hardware,
        "settings": {**params, "n": args.n, "image_size": args.image_size, "num_classes": args.num_classes,
                     "model": args.model, "width": args.width},
        "direct_s": {"min": round(best["direct"], 4), "median": round(median["direct"], 4)},
        "ours_s": {"min": round(best["ours"], 4), "median": round(median["ours"], 4)},
        "ratio_min": round(best["ours"] / best["direct"], 4),
        "ratio_median": round(median["ours"] / median["direct"], 4),
        "accuracy": {k: sorted(v) for k, v in results.items()},
    }
    same = results["direct"] == results["ours"] and len(results["ours"]) == 1
    ok = same and summary["ratio_min"] <= 1.05
    summary["pass"] = ok
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"device: {summary['device']}; {args.n} images, {args.version} AutoAttack "
              f"{params.get('attacks', '')} n_iter={args.n_iter}, {args.rounds} rounds")
        print(f"direct pyautoattack: min {best['direct']:.3f} s, median {median['direct']:.3f} s")
        print(f"advdistill metric:   min {best['ours']:.3f} s, median {median['ours']:.3f} s")
        print(f"ratio ours/direct:   {summary['ratio_min']:.3f} (fastest rounds), "
              f"{summary['ratio_median']:.3f} (medians)")
        print(f"robust accuracy:     direct {sorted(results['direct'])}, ours {sorted(results['ours'])}")
        print("PASS" if ok else "FAIL: " + ("results differ" if not same else "ratio above 1.05"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
