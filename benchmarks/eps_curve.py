"""How much time does the ε-curve save by attacking only the survivors of the previous radius?

Three ways to compute the curve of one model on the same test images, radii and seed:

- ``from scratch``: what the ``eps_curve`` metric did before: at every radius the ``pgd`` metric
  (PGD-20, uniform random start) on every image, then the standard AutoAttack (APGD-CE, APGD-T,
  FAB-T, Square) on every image;
- ``survivors, standard AA``: the ``eps_curve`` metric with ``autoattack = {version = "standard"}``:
  each radius attacks only the images still robust at the previous radius (PGD from the points it
  reached there);
- ``survivors, APGD-CE + APGD-T``: the ``eps_curve`` metric with its defaults.

The model is a run's ``checkpoints/last.safetensors`` (its recipe gives the data, the threat
model and the radii: 1, 1.25, 1.5, 1.75, 2 × the run's ε). Prints the time of each and the curves.

Example (2-core CPU: train a demo-size model first)::

    advdistill train recipes/demo/teacher.toml --set train.epochs=4 --set eval.at_end=false \\
        --set 'student.widths=[16, 32]' --set student.hidden=64 --set callbacks.periodic_eval=false --out runs/s
    python benchmarks/eps_curve.py runs/s --n 100
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import timed

import advdistill as ad
from advdistill.components import build_student, load_data
from advdistill.engine.checkpoint import load_state_strict, read_tensors
from advdistill.evaluation.context import EvalContext
from advdistill.torch_utils import freeze


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a run directory (recipe.json, checkpoints/last.safetensors)")
    p.add_argument("--n", type=int, default=100, help="the first N test images")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--skip-scratch", action="store_true", help="leave out the (slow) from-scratch curve")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p.parse_args(argv)


def from_scratch(ctx: EvalContext, radii: list[float], step: float) -> list[dict]:
    """The curve as the metric computed it before: PGD-20 and standard AutoAttack on every image at every ε."""
    curve = []
    for eps in radii:
        pgd = ad.build("metric", "pgd", eps=eps, step_size=step, steps=20, key="pgd20").evaluate(ctx)
        aa = ad.build("metric", "autoattack", eps=eps, key="autoattack", backend="pyautoattack").evaluate(ctx)
        curve.append({"eps": eps, **pgd, **aa})
    return curve


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = ad.load_recipe(args.run_dir / "recipe.json")
    device = torch.device("cuda" if torch.cuda.is_available() and recipe.train.device != "cpu" else "cpu")
    splits = load_data(recipe)
    model = build_student(recipe, splits.info)
    weights = args.run_dir / "checkpoints" / "last.safetensors"
    load_state_strict(model, read_tensors(weights), source=str(weights))
    model = freeze(model.eval()).to(device)

    def ctx() -> EvalContext:
        return EvalContext(model=model, images=splits.test_x[: args.n], labels=splits.test_y[: args.n], device=device,
                           batch_size=args.batch_size, recipe=recipe, seed=0, show_progress=False)

    base = ctx().threat()
    radii = [base.eps * m for m in (1.0, 1.25, 1.5, 1.75, 2.0)]
    step = base.eps / 4
    runs = {
        "survivors, APGD-CE + APGD-T": lambda: ad.build("metric", "eps_curve").evaluate(ctx())["eps_curve"],
        "survivors, standard AA": lambda: ad.build(
            "metric", "eps_curve", autoattack={"version": "standard", "backend": "pyautoattack"}
        ).evaluate(ctx())["eps_curve"],
    }
    if not args.skip_scratch:
        runs["from scratch, standard AA"] = lambda: from_scratch(ctx(), radii, step)
    results = {}
    for name, run in runs.items():
        seconds, curve = timed(run, device)
        results[name] = {"seconds": round(seconds, 2), "curve": curve}
        print(f"{name}: {seconds:.1f} s", file=sys.stderr)
    threads = f"cpu ({torch.get_num_threads()} threads)"
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else threads
    summary = {"device": hardware, "run": str(args.run_dir), "n": args.n, "threat": str(base), "results": results}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"device: {hardware}; {args.n} test images of {recipe.name}; radii 1–2 × {base}")
    header = "| curve | seconds | " + " | ".join(f"ε = {eps:.3g}: PGD / AA" for eps in radii) + " |"
    print(header)
    print("|---|---:|" + "---|" * len(radii))
    for name, result in results.items():
        cells = [f"{p['pgd20']:.1f} / {p['autoattack']:.1f}" for p in result["curve"]]
        print(f"| {name} | {result['seconds']:.1f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
