"""Time the framework's training step against a plain-PyTorch loop of the same math.

For each preset (a shipped CIFAR recipe) or a recipe given with ``--recipe``, the script builds
the framework's ``Trainer`` and, next to it, the plain loop written out below
(:func:`plain_step`: the reference implementation of the step, nothing imported from the
engine). Both get the same student weights, the same teacher, the same batch and the same
random start of the attack; the script first checks that they compute the same loss and the same
updated weights (``check``), then times ``--rounds`` rounds of ``--steps`` steps of each,
alternating which goes first, and reports median ms/step, images/s, seconds per 50k-image
epoch, peak memory and the ratio framework/plain.

Models and data: CIFAR-shaped random data (``synthetic``) and random weights; no data set or
teacher file is needed. Two scales:

- ``paper`` (default on CUDA): CIFAR ResNet-18 student, DMWideResNet-28-10 teacher, 32x32, batch 128;
- ``small`` (default on CPU): small CNNs (student 8/16 channels, teacher 32/64) on 16x16 images,
  batch 16 — a step takes tens to hundreds of ms on one CPU thread.

Both use 10 attack steps. The recipe's ``[train]`` speed settings (``amp``, ``channels_last``,
``compile``, ``compile_mode``, ``compile_teacher``, ``teacher_bf16``, ``optimizer_impl``,
``cudnn_benchmark``; change them with ``--set train.compile=true``) apply to both sides, so the
ratio stays the framework's own overhead.

Examples::

    python benchmarks/step_time.py --device cpu --threads 1                   # all presets, small models
    python benchmarks/step_time.py --device cuda --preset adaad+igdm          # paper models on the GPU
    python benchmarks/step_time.py --device cuda --preset pgd_at --set train.compile=true --json
    python benchmarks/step_time.py --recipe recipes/cifar10/resnet18/trades.toml --device cpu  # no plain loop
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import (
    EPOCH_IMAGES,
    RECIPES,
    PeakMemory,
    count,
    hardware,
    last_epoch,
    make_trainer,
    save_random_teacher,
    synthetic_overrides,
    time_block,
    toml_table,
)

PRESETS = ("pgd_at", "rslad+igdm", "adaad+igdm", "adaad+igdm-no-tin")
SCALES = {
    "paper": {"student": '{kind = "cifar_resnet18"}', "teacher": '{kind = "dm_wrn_28_10"}',
              "batch_size": 128, "image_size": 32},
    "small": {"student": '{kind = "small_cnn", widths = [8, 16], hidden = 32}',
              "teacher": '{kind = "small_cnn", widths = [32, 64], hidden = 128}',
              "batch_size": 16, "image_size": 16},
}
TIMING = {  # warm-up steps per side, timed steps per round, rounds
    "cuda": {"warmup": 5, "steps": 10, "rounds": 5},
    "cpu": {"warmup": 2, "steps": 1, "rounds": 21},
}
LR = 0.01  # a fixed learning rate for both sides (the schedule is not part of the step)


# ============================================================================================
# The plain-PyTorch reference step
# ============================================================================================

@dataclass(frozen=True)
class Hyper:
    """The numbers of one step, read from the recipe (at the last epoch, every term on)."""

    attack: str  # "pgd" | "rslad_kl" | "adaad_kl"
    eps: float
    step_size: float
    steps: int
    start: str  # "uniform" (x + U(-eps, eps)) | "normal" (x + std * N(0, 1))
    start_std: float
    clamp_start: bool
    objective: str  # "pgd_at" | "rslad" | "adaad"
    # RSLAD: scale * (adv_weight * KL(T(x) || S(x_adv)) + nat_weight * KL(T(x) || S(x)))
    adv_weight: float = 0.0
    nat_weight: float = 0.0
    scale: float = 1.0
    rslad_target_eps: float = 0.0  # "official" form: p * (log(p + 1e-5) - log q)
    # AdaAD: alpha * KL(T(x_adv) || S(x_adv)) + (1 - alpha) * KL(T(x) || S(x))
    alpha: float = 1.0
    reduction: str = "mean"
    # IGDM: igdm_weight * KL(softmax(ΔT) || softmax(ΔS)), Δ = f(x + beta δ) − f(x − gamma δ)
    igdm_weight: float | None = None
    beta: float = 1.0
    gamma: float = 1.0
    # SGD
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    amp: bool = False
    cuda_graphs: bool = False  # compiled models replay CUDA graphs
    teacher_points: tuple[float, ...] = field(default=())


def kl(target_logits: Tensor, input_logits: Tensor, reduction: str, target_eps: float = 0.0) -> Tensor:
    """KL(softmax(target) || softmax(input)), elementwise p·(log p − log q), then reduced."""
    log_q = F.log_softmax(input_logits, dim=1)
    if target_eps:
        p = F.softmax(target_logits, dim=1)
        per_element = p * (torch.log(p + target_eps) - log_q)
    else:
        per_element = F.kl_div(log_q, F.log_softmax(target_logits, dim=1), reduction="none", log_target=True)
    if reduction == "batchmean":
        return per_element.sum() / per_element.shape[0]
    return per_element.mean() if reduction == "mean" else per_element.sum()


def plain_step(student: nn.Module, teacher: nn.Module | None, optimizer: torch.optim.Optimizer, h: Hyper,
               x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
    """One training step, written out: attack, teacher outputs, loss, update. Returns the loss."""
    if h.cuda_graphs:  # a compiled model's outputs stay valid until the next step begins
        torch.compiler.cudagraph_mark_step_begin()
    autocast = torch.autocast("cuda", torch.bfloat16, enabled=h.amp and x.device.type == "cuda")
    b = x.shape[0]
    t_out: dict[float, Tensor] = {}  # teacher logits at x + c·δ, by c

    with autocast:
        # 1) RSLAD's target: the teacher's soft labels on the clean batch, once per batch
        if h.attack == "rslad_kl":
            with torch.no_grad():
                t_out[0.0] = teacher(x).float()

        # 2) random start inside the ball (the TRADES family: x + 0.001·N(0, 1), not clamped)
        if h.start == "uniform":
            noise = (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * h.eps
        else:
            noise = h.start_std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_adv = (x + noise).clamp(0.0, 1.0) if h.clamp_start else x + noise

        # 3) inner maximization: signed-gradient ascent, projected on the ε-ball and on [0, 1].
        #    The student is in eval mode (BatchNorm on running statistics, as the official codes);
        #    only the input gradient is taken, so no parameter gradient is computed.
        student.eval()
        for _ in range(h.steps):
            x_adv.requires_grad_(True)
            s_adv = student(x_adv).float()
            if h.attack == "pgd":
                loss = F.cross_entropy(s_adv, y, reduction="sum")
            elif h.attack == "rslad_kl":
                loss = kl(t_out[0.0], s_adv, "sum")
            else:  # adaad_kl: the teacher sees x_adv too, and the gradient flows through it
                loss = kl(teacher(x_adv).float(), s_adv, "sum")
            (grad,) = torch.autograd.grad(loss, [x_adv])
            x_adv = x_adv.detach() + h.step_size * grad.sign()
            x_adv = (x + (x_adv - x).clamp(-h.eps, h.eps)).clamp(0.0, 1.0)
        student.train()
        delta = x_adv - x

        def point(c: float) -> Tensor:  # x + c·δ; c = 1 is x_adv itself
            return x_adv if c == 1.0 else x + c * delta

        # 4) the teacher at every point the losses read, in one batched no-grad forward
        missing = [c for c in h.teacher_points if c not in t_out]
        if missing:
            with torch.no_grad():
                inputs = [point(c) for c in missing]
                logits = teacher(inputs[0] if len(inputs) == 1 else torch.cat(inputs)).float()
            t_out.update(zip(missing, logits.split(b)))

        # 5) the student in train mode: one forward per point, clean first as the official loops
        #    (each forward's batch statistics and running-statistics update are the official ones)
        if h.objective == "pgd_at":
            s_adv = student(x_adv).float()
            loss = F.cross_entropy(s_adv, y)
        elif h.objective == "rslad":
            s_clean, s_adv = student(x).float(), student(x_adv).float()
            nat = kl(t_out[0.0], s_clean, h.reduction, h.rslad_target_eps)
            adv = kl(t_out[0.0], s_adv, h.reduction, h.rslad_target_eps)
            loss = h.scale * (h.adv_weight * adv + h.nat_weight * nat)
        else:  # adaad; its clean pass runs even when alpha = 1 (official loop: BN statistics)
            s_clean, s_adv = student(x).float(), student(x_adv).float()
            loss = kl(t_out[1.0], s_adv, h.reduction)
            if h.alpha != 1.0:
                loss = h.alpha * loss + (1.0 - h.alpha) * kl(t_out[0.0], s_clean, h.reduction)

        # 6) IGDM: match the logit differences across x ± δ (x + βδ is x_adv when β = 1)
        if h.igdm_weight is not None:
            if h.beta == 1.0:
                s_plus, s_minus = s_adv, student(point(-h.gamma)).float()
            else:  # both points in one forward, as the framework batches them
                s_plus, s_minus = student(torch.cat([point(h.beta), point(-h.gamma)])).float().split(b)
            d_t = t_out[h.beta] - t_out[-h.gamma]
            loss = loss + h.igdm_weight * kl(d_t, s_plus - s_minus, "batchmean")

    # 7) update; set_to_none frees the gradients' memory between steps
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


# ============================================================================================
# What the plain loop is given: hyperparameters and models mirroring the recipe
# ============================================================================================

class Unsupported(Exception):
    """The recipe uses something the plain loop does not write out."""


def hyper_from(trainer) -> Hyper:
    """The plain loop's numbers for ``trainer``'s recipe; :class:`Unsupported` for other methods."""
    recipe, cfg, progress = trainer.recipe, trainer.cfg, last_epoch(trainer)
    attack, objective = recipe.attack, recipe.objective
    if attack is None or attack.name not in ("pgd", "rslad_kl", "adaad_kl"):
        raise Unsupported(f"attack {getattr(attack, 'name', None)!r} (the plain loop has pgd, rslad_kl, adaad_kl)")
    if objective is None or objective.name not in ("pgd_at", "rslad", "adaad"):
        raise Unsupported(f"objective {getattr(objective, 'name', None)!r} (the plain loop has pgd_at, rslad, adaad)")
    a = attack.config
    checks = {
        "attack.norm = 'linf'": a.norm == "linf", "attack.warmup_epochs = 0": a.warmup_epochs == 0,
        "train.attack_bn = 'eval'": cfg.attack_bn == "eval", "train.grad_clip unset": cfg.grad_clip is None,
        "optim.kind = 'sgd'": recipe.optim.kind == "sgd", "aux: igdm only": set(recipe.aux) <= {"igdm"},
    }
    fields: dict[str, Any] = {}
    o = objective.config
    if objective.name == "rslad":
        checks["objective.temperature = 1"] = o.temperature == 1.0
        fields.update(adv_weight=o.adv_weight(progress), nat_weight=o.nat_weight(progress), scale=o.scale,
                      reduction=o.reduction, rslad_target_eps=1e-5 if o.form == "official" else 0.0)
        points: list[float] = [0.0]
    elif objective.name == "adaad":
        checks["objective.alpha constant"] = o.alpha.is_constant
        fields.update(alpha=o.alpha(progress), reduction=o.reduction)
        points = [1.0] if fields["alpha"] == 1.0 else [0.0, 1.0]
    else:
        points = []
    if "igdm" in recipe.aux:
        g = recipe.aux["igdm"].config
        checks["aux.igdm.distance = 'kl', temperature = 1"] = g.distance == "kl" and g.temperature == 1.0
        fields.update(igdm_weight=g.alpha(progress), beta=g.beta, gamma=g.gamma)
        points += [g.beta, -g.gamma]
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise Unsupported("the plain loop assumes " + ", ".join(failed))
    opt = recipe.optim
    return Hyper(
        attack=attack.name, eps=a.eps, step_size=a.step_size, steps=a.steps, start=a.start,
        start_std=a.start_std, clamp_start=a.clamp_start, objective=objective.name,
        momentum=opt.momentum, weight_decay=opt.weight_decay, nesterov=opt.nesterov, amp=trainer.amp,
        cuda_graphs=trainer.cuda_graphs,
        teacher_points=tuple(dict.fromkeys(float(c) for c in points)), **fields,
    )


def plain_models(trainer, teacher_path: Path, teacher_arch: str):
    """The plain loop's own student (a copy of the framework's), teacher (read from the file) and SGD.

    The recipe's speed settings are applied to them too (the engine's setup helpers: compile,
    bf16 teacher, optimizer implementation), so that the ratio measures the step's overhead alone.
    """
    from safetensors.torch import load_file

    import advdistill as ad
    from advdistill.engine.speed import BF16Teacher, compile_model, optimizer_options

    cfg, device = trainer.cfg, trainer.device
    memory_format = torch.channels_last if trainer.channels_last else torch.contiguous_format
    h = hyper_from(trainer)
    student = copy.deepcopy(trainer.student)
    optimizer = torch.optim.SGD(student.parameters(), lr=LR, momentum=h.momentum, weight_decay=h.weight_decay,
                                nesterov=h.nesterov, **optimizer_options(cfg.optimizer_impl))
    forward = compile_model(student, cfg.compile_mode) if cfg.compile else student
    teacher = None
    if trainer.teacher is not None:
        table = toml_table(teacher_arch)
        teacher = ad.create_model(table.pop("kind"), num_classes=trainer.info.num_classes, in_chans=3, **table)
        teacher.load_state_dict(load_file(str(teacher_path)))
        teacher = teacher.eval().requires_grad_(False).to(device, memory_format=memory_format)
        if cfg.teacher_bf16 and device.type == "cuda":
            teacher = BF16Teacher(teacher)
        if cfg.compile_teacher:
            teacher = compile_model(teacher, cfg.compile_mode)
    return forward, student, teacher, optimizer, h


# ============================================================================================
# Check, time, report
# ============================================================================================

def tolerance(device: torch.device, amp: bool) -> float:
    """Relative tolerance of the check: exact arithmetic on CPU; TF32 kernels or bf16 on CUDA."""
    if device.type == "cpu":
        return 1e-5
    return 2e-2 if amp else 1e-3


def check(trainer, plain, x, y, progress) -> dict[str, Any]:
    """Both sides from the same weights, batch and attack start: same loss and same updated weights."""
    forward, student, teacher, optimizer, h = plain
    seed = 1234
    trainer.attack_generator.manual_seed(seed)
    plain_gen = torch.Generator(device=x.device).manual_seed(seed)
    framework_loss = float(trainer.train_step(x, y, progress, LR)[0])
    plain_loss = float(plain_step(forward, teacher, optimizer, h, x, y, plain_gen))
    rtol = tolerance(trainer.device, trainer.amp)
    loss_diff = abs(framework_loss - plain_loss)
    ours, theirs = trainer.student.state_dict(), student.state_dict()
    weight_diff = max(
        (float((ours[k].float() - theirs[k].float()).abs().max()) for k in ours if ours[k].is_floating_point()),
        default=0.0,
    )
    weight_scale = max(float(v.float().abs().max()) for v in ours.values() if v.is_floating_point())
    ok = loss_diff <= rtol * max(abs(plain_loss), 1e-12) and weight_diff <= rtol * weight_scale
    return {"framework_loss": framework_loss, "plain_loss": plain_loss, "loss_abs_diff": loss_diff,
            "weights_max_abs_diff": weight_diff, "rtol": rtol, "same": ok}


def run_one(name: str, recipe_path: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    torch.manual_seed(0)  # the same random teacher and student whichever presets run before
    teacher_path = save_random_teacher(args.teacher, args.num_classes, workdir / f"{name}-teacher.safetensors")
    overrides = synthetic_overrides(
        recipe_path, student=args.student, teacher_path=teacher_path, teacher_arch=args.teacher,
        device=args.device, batch_size=args.batch_size, image_size=args.image_size,
        num_classes=args.num_classes, attack_steps=args.attack_steps, amp=not args.no_amp,
    ) + list(args.set)
    trainer = make_trainer(recipe_path, overrides, workdir / name)
    device = trainer.device
    x, y = next(iter(trainer.train_loader))
    progress = last_epoch(trainer)
    try:
        plain = plain_models(trainer, teacher_path, args.teacher)
        unsupported = None
    except Unsupported as exc:
        plain, unsupported = None, str(exc)
    result: dict[str, Any] = {"name": name, "recipe": str(recipe_path), "plain_loop": unsupported is None}
    if unsupported:
        result["plain_loop_missing"] = unsupported
    else:
        result["check"] = check(trainer, plain, x, y, progress)
        if not result["check"]["same"] and not args.no_check:
            return result

    sides = {"framework": lambda: trainer.train_step(x, y, progress, LR)}
    if plain is not None:
        forward, _, teacher, optimizer, h = plain
        gen = torch.Generator(device=device).manual_seed(1)
        sides["plain"] = lambda: plain_step(forward, teacher, optimizer, h, x, y, gen)
    for step in sides.values():
        time_block(step, args.warmup, device)
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    memory = {k: PeakMemory(device) for k in sides}
    for r in range(args.rounds):
        for key in list(sides) if r % 2 == 0 else list(sides)[::-1]:
            with memory[key]:
                seconds, cpu_seconds = time_block(sides[key], args.steps, device)
            wall[key].append(seconds)
            cpu[key].append(cpu_seconds)
    for key in sides:
        seconds = statistics.median(wall[key])
        result[key] = {
            "ms_per_step": round(seconds * 1e3, 3),
            "images_per_s": round(args.batch_size / seconds, 1),
            "s_per_epoch": round(EPOCH_IMAGES * seconds / args.batch_size, 1),
            "cpu_ms_per_step": round(statistics.median(cpu[key]) * 1e3, 3),
            "peak_mib": round(memory[key].peak_bytes / 2**20, 1),
            "step_mib": round(memory[key].step_bytes / 2**20, 1),
            "rounds_ms": [round(t * 1e3, 3) for t in wall[key]],
            "rounds_cpu_ms": [round(t * 1e3, 3) for t in cpu[key]],
        }
    if plain is not None:
        # each round's two blocks ran back to back under the same load: compare them pairwise
        result["ratio"] = paired_ratio(wall["framework"], wall["plain"])
        result["ratio_cpu"] = paired_ratio(cpu["framework"], cpu["plain"])
        result["ratio_fastest"] = round(min(wall["framework"]) / min(wall["plain"]), 4)
    return result


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """Median over rounds of ours / theirs (the two blocks of a round ran back to back)."""
    return round(statistics.median(a / b for a, b in zip(ours, theirs)), 4)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", action="append", choices=[*PRESETS, "all"],
                   help="a shipped recipe (repeatable; default: all)")
    p.add_argument("--recipe", type=Path, action="append", default=[], help="a recipe file instead (repeatable)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu, cuda, cuda:1")
    p.add_argument("--scale", choices=sorted(SCALES), help="models and batch (default: paper on CUDA, small on CPU)")
    p.add_argument("--student", help='student model table in TOML, e.g. \'{kind = "cifar_resnet18"}\'')
    p.add_argument("--teacher", help='teacher architecture table, e.g. \'{kind = "dm_wrn_28_10"}\'')
    p.add_argument("--batch-size", type=count(1))
    p.add_argument("--image-size", type=count(4))
    p.add_argument("--num-classes", type=count(2), default=10)
    p.add_argument("--attack-steps", type=count(0), default=10, help="inner maximization steps (default: 10)")
    p.add_argument("--warmup", type=count(0), help="untimed steps per side first")
    p.add_argument("--steps", type=count(1), help="timed steps per round")
    p.add_argument("--rounds", type=count(1), help="rounds, alternating which side goes first")
    p.add_argument("--threads", type=count(1), help="torch CPU threads")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA (the recipes use it)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a recipe override for both sides, e.g. train.compile=true (repeatable)")
    p.add_argument("--no-check", action="store_true", help="time even when the check fails")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    args.scale = args.scale or ("paper" if device.type == "cuda" else "small")
    for key, value in {**SCALES[args.scale], **TIMING[device.type]}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not args.preset and not args.recipe:
        args.preset = ["all"]
    presets = PRESETS if "all" in (args.preset or []) else tuple(dict.fromkeys(args.preset or []))
    args.targets = [(name, RECIPES / f"{name}.toml") for name in presets]
    args.targets += [(path.stem, path) for path in args.recipe]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_one(name, path, args, Path(tmp)) for name, path in args.targets]
    device = torch.device(args.device)
    summary = {
        "device": hardware(device), "torch": torch.__version__, "scale": args.scale,
        "student": args.student, "teacher": args.teacher, "batch_size": args.batch_size,
        "image_size": args.image_size, "attack_steps": args.attack_steps,
        "amp": device.type == "cuda" and not args.no_amp, "overrides": args.set,
        "warmup": args.warmup, "steps": args.steps, "rounds": args.rounds, "results": results,
    }
    failed = [r["name"] for r in results if "check" in r and not r["check"]["same"]]
    if args.json:
        print(json.dumps(summary))
    else:
        print_table(summary)
    return 1 if failed else 0


def print_table(summary: dict[str, Any]) -> None:
    print(f"{summary['device']}, torch {summary['torch']}; student {summary['student']}, teacher "
          f"{summary['teacher']}; batch {summary['batch_size']}, {summary['image_size']}x{summary['image_size']}, "
          f"{summary['attack_steps']} attack steps, amp {summary['amp']}"
          + (f"; --set {' '.join(summary['overrides'])}" if summary["overrides"] else ""))
    print(f"median of {summary['rounds']} rounds of {summary['steps']} steps ({summary['warmup']} warm-up steps)")
    header = (f"{'preset':<20} {'side':<10} {'ms/step':>9} {'CPU ms':>9} {'img/s':>8} {'s/epoch':>9} "
              f"{'peak MiB':>9} {'step MiB':>9}")
    print(header)
    for r in summary["results"]:
        for side in ("framework", "plain"):
            if side in r:
                s = r[side]
                print(f"{r['name']:<20} {side:<10} {s['ms_per_step']:9.2f} {s['cpu_ms_per_step']:9.2f} "
                      f"{s['images_per_s']:8.1f} "
                      f"{s['s_per_epoch']:9.1f} {s['peak_mib']:9.1f} {s['step_mib']:9.1f}")
        if "check" in r:
            c = r["check"]
            verdict = "same" if c["same"] else "DIFFERENT"
            print(f"{'':<20} check: loss {c['framework_loss']:.6g} vs {c['plain_loss']:.6g} "
                  f"(|Δ| {c['loss_abs_diff']:.2g}), weights max |Δ| {c['weights_max_abs_diff']:.2g}, "
                  f"rtol {c['rtol']:g}: {verdict}")
        if "ratio" in r:
            print(f"{'':<20} ratio framework/plain: {r['ratio']:.3f} (wall), {r['ratio_cpu']:.3f} (CPU time), "
                  f"{r['ratio_fastest']:.3f} (fastest rounds); medians of the rounds' ratios")
        if "plain_loop_missing" in r:
            print(f"{'':<20} no plain loop: {r['plain_loop_missing']}")


if __name__ == "__main__":
    sys.exit(main())
