"""How much does IGDM add to a base method's training step? Prints the time ratio.

Times ``Trainer.train_step`` on one prepared batch for the shipped CIFAR recipe of a base
method (``recipes/cifar10/resnet18/<base>.toml``) and for the same recipe + IGDM
(``<base>+igdm.toml``): warm-up steps, then ``--steps`` timed steps per round, ``--rounds``
rounds alternating the two (medians reported; ``torch.cuda.synchronize`` around each timed
block on GPU). Data, student and teacher are replaced by the options below (synthetic data;
the teacher is a randomly initialised model saved as a ``checkpoint`` teacher), so the script
needs no data set or teacher weights. The paper measured +5.5 % for IGDM on top of its base.

Examples::

    python benchmarks/igdm_overhead.py --preset cpu-small            # seconds on 2 CPU cores
    python benchmarks/igdm_overhead.py --device cuda --base adaad    # ResNet-18 student, WRN-28-10 teacher
    python benchmarks/igdm_overhead.py --device cuda --base rslad --batch-size 256 --json
    python benchmarks/igdm_overhead.py --device cuda --base adaad --set train.compile=true
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import (
    RECIPES,
    count,
    hardware,
    last_epoch,
    make_trainer,
    save_random_teacher,
    synthetic_overrides,
    time_block,
)

BASES = ("pgd_at", "trades", "mart", "ard", "iad", "rslad", "adaad")

PRESETS = {
    # a ResNet-18 student and the paper's WideResNet-28-10 teacher at CIFAR scale
    "gpu": {"device": "cuda", "student": '{kind = "cifar_resnet18"}', "teacher": '{kind = "dm_wrn_28_10"}',
            "batch_size": 128, "image_size": 32, "num_classes": 10, "warmup": 5, "steps": 10, "rounds": 5},
    # tiny CNNs on 16x16 inputs, the teacher ~30x the student's compute: a 2-core CPU run
    "cpu-small": {"device": "cpu", "student": '{kind = "small_cnn", widths = [8, 16], hidden = 32}',
                  "teacher": '{kind = "small_cnn", widths = [48, 96], hidden = 128}',
                  "batch_size": 16, "image_size": 16, "num_classes": 10,
                  "warmup": 2, "steps": 3, "rounds": 5, "threads": 1},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="gpu", help="defaults of the others")
    parser.add_argument("--base", choices=BASES, default="adaad", help="the base method (default: adaad)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (preset: cuda / cpu)")
    parser.add_argument("--student", help='student model table in TOML, e.g. \'{kind = "cifar_resnet18"}\'')
    parser.add_argument("--teacher", help='teacher architecture table, e.g. \'{kind = "dm_wrn_28_10"}\'')
    parser.add_argument("--batch-size", type=count(1))
    parser.add_argument("--image-size", type=count(4))
    parser.add_argument("--num-classes", type=count(2))
    parser.add_argument("--attack-steps", type=count(0), default=10, help="inner max steps (recipe: 10)")
    parser.add_argument("--warmup", type=count(0), help="untimed steps per recipe first")
    parser.add_argument("--steps", type=count(1), help="timed steps per round")
    parser.add_argument("--rounds", type=count(1), help="rounds alternating base and base+IGDM")
    parser.add_argument("--threads", type=count(1),
                        help="torch CPU threads (cpu-small: 1, far less sensitive to other load)")
    parser.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA (the recipes use it)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe override for both, e.g. train.compile=true (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def trainer_for(recipe_path: Path, args: argparse.Namespace, teacher_path: Path, workdir: Path):
    overrides = synthetic_overrides(
        recipe_path, student=args.student, teacher_path=teacher_path, teacher_arch=args.teacher,
        device=args.device, batch_size=args.batch_size, image_size=args.image_size,
        num_classes=args.num_classes, attack_steps=args.attack_steps, amp=not args.no_amp,
    )
    return make_trainer(recipe_path, overrides + list(args.set), workdir / recipe_path.stem)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        teacher_path = save_random_teacher(args.teacher, args.num_classes, workdir / "teacher.safetensors")
        trainers = {
            "base": trainer_for(RECIPES / f"{args.base}.toml", args, teacher_path, workdir),
            "igdm": trainer_for(RECIPES / f"{args.base}+igdm.toml", args, teacher_path, workdir),
        }
        device = trainers["base"].device
        steps = {}
        for key, trainer in trainers.items():
            x, y = next(iter(trainer.train_loader))
            steps[key] = lambda t=trainer, x=x, y=y: t.train_step(x, y, last_epoch(t), lr=0.01)
            time_block(steps[key], args.warmup, device)
        times: dict[str, list[float]] = {"base": [], "igdm": []}
        for _ in range(args.rounds):
            for key in trainers:
                times[key].append(time_block(steps[key], args.steps, device)[0])
    base, igdm = statistics.median(times["base"]), statistics.median(times["igdm"])
    result = {
        "base": args.base, "device": str(device),
        "device_name": hardware(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "student": args.student, "teacher": args.teacher,
        "batch_size": args.batch_size, "image_size": args.image_size, "attack_steps": args.attack_steps,
        "amp": device.type == "cuda" and not args.no_amp, "overrides": args.set,
        "base_ms_per_step": round(base * 1e3, 2), "igdm_ms_per_step": round(igdm * 1e3, 2),
        "ratio": round(igdm / base, 4), "overhead_percent": round((igdm / base - 1) * 100, 2),
        "rounds_ms": {k: [round(v * 1e3, 2) for v in vals] for k, vals in times.items()},
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.base} vs {args.base}+igdm on {result['device_name']} ({device}), "
              f"batch {args.batch_size}, {args.image_size}x{args.image_size}, "
              f"student {args.student}, teacher {args.teacher}")
        print(f"  {args.base:>12}: {result['base_ms_per_step']:9.2f} ms/step")
        print(f"  {args.base + '+igdm':>12}: {result['igdm_ms_per_step']:9.2f} ms/step")
        print(f"  ratio {result['ratio']:.3f}  (IGDM overhead {result['overhead_percent']:+.1f} %)")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
