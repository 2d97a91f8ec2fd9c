"""Checks that attack the model again: ``more_steps`` (a stronger PGD), ``unbounded`` (ε large
enough to reach any image) and ``black_box`` (Square, and transfer from the teacher)."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from advdistill.components import build
from advdistill.errors import PluginError
from advdistill.evaluation.checks.base import (
    CheckInputs,
    CheckResult,
    Drop,
    Robust,
    flagged,
    not_run,
    passed,
    pct,
    smallest_flagged_drop,
    threat_text,
)
from advdistill.evaluation.context import EvalContext

log = logging.getLogger(__name__)

# generator streams of the checks (the metrics use small numbers)
MORE_STEPS_STREAM, TRANSFER_STREAM = 101, 103
SQUARE_NORMS = ("linf", "l2")  # AutoAttack's Square has no L1 version


def clean_correct(ctx: EvalContext) -> Tensor:
    """Per image of ``ctx``: classified correctly without an attack (bool (N,), on the CPU)."""
    with torch.no_grad():
        return torch.cat([ctx.model(x).argmax(1) == y for x, y in ctx.batches()]).cpu()


def robust_flags(ctx: EvalContext, attack: Any, *, restarts: int = 1, source: nn.Module | None = None,
                 stream: int = 0) -> Tensor:
    """Per image of ``ctx``: classified correctly by ``ctx.model`` without an attack and after
    ``attack`` (crafted on ``source``, default the model itself) in every one of ``restarts`` runs.

    Only the correctly classified images are attacked (as AutoAttack does): a misclassified image
    is its own adversarial example."""
    correct = clean_correct(ctx)
    flags = torch.zeros_like(correct)
    if not correct.any():
        return flags
    attacked = attrs.evolve(ctx, images=ctx.images[correct], labels=ctx.labels[correct])
    generator = attacked.generator(stream=stream)
    source = ctx.model if source is None else source
    robust = []
    for x, y in attacked.batches():
        alive = torch.ones_like(y, dtype=torch.bool)
        for _ in range(restarts):
            x_adv = attack.perturb(source, x, y, generator=generator)
            with torch.no_grad():
                alive &= ctx.model(x_adv).argmax(1) == y
        robust.append(alive)
    flags[correct] = torch.cat(robust).cpu()
    return flags


def pgd_settings(result: Robust) -> dict[str, Any] | None:
    """The ``pgd`` attack settings a PGD metric declared it ran with (None when it did not say)."""
    return dict(result.settings) if result.settings else None


def _drop_text(drop: Drop) -> str:
    return f"drop {drop.points:.2f} points, p = {drop.p_value:.2g}"


def check_more_steps(inputs: CheckInputs) -> CheckResult:
    """Each PGD metric again with ``steps_factor`` × its steps and ``restarts`` random starts on the
    first n images, against the metric's own per-image result: flagged when accuracy drops by more
    than ``margin`` points and beyond noise (one-sided exact sign test, p < ``alpha``)."""
    cfg = inputs.config
    candidates = [r for r in inputs.white_box("pgd") if r.metric is not None and not r.key.startswith("eps_curve@")]
    runnable = [(r, settings) for r in candidates if (settings := pgd_settings(r)) is not None]
    if not runnable:
        return not_run("no PGD metric with per-image results in this evaluation (add the `pgd` metric)")
    sub = inputs.subset()
    lines, details, any_flag = [], {}, False
    for result, settings in runnable:
        steps = settings["steps"] * cfg.steps_factor
        restarts = max(cfg.restarts, int(getattr(result.metric.config, "restarts", 1)))
        attack = build("attack", "pgd", **{**settings, "steps": steps, "start": "uniform"})
        drop = Drop.of(result.flags[: inputs.n], robust_flags(sub, attack, restarts=restarts, stream=MORE_STEPS_STREAM))
        name = f"PGD-{steps}" + (f" ×{restarts} restarts" if restarts > 1 else "")
        is_flagged = drop.is_flagged(cfg.margin, cfg.alpha)
        any_flag |= is_flagged
        lines.append(f"{name} {pct(100.0 * drop.other / drop.n)} vs {result.key} "
                     f"{pct(100.0 * drop.reference / drop.n)} ({_drop_text(drop)})")
        details[result.key] = {"attack": name, "steps": steps, "restarts": restarts, **drop.as_dict(),
                               "flagged": is_flagged}
    smallest = smallest_flagged_drop(inputs.n, cfg.margin, cfg.alpha)
    values = {"results": details, "margin": cfg.margin, "alpha": cfg.alpha, "smallest_flagged_drop": smallest}
    text = f"first {inputs.n} images: " + "; ".join(lines)
    if any_flag:
        return flagged(f"{text}; drop > margin {cfg.margin:g} and p < {cfg.alpha:g}: the PGD number "
                       "overestimates robustness (the attack has not converged); report a stronger attack "
                       "(more steps, restarts) or AutoAttack", **values)
    return passed(f"{text} (a drop is flagged from {smallest:.2f} points at this n)", **values)


def check_unbounded(inputs: CheckInputs) -> CheckResult:
    """Linf PGD with ε = ``unbounded_eps`` (1: any image is reachable), ``unbounded_steps`` steps of
    2.5·ε/steps from the clean image (no random start) on the first n images: flagged when accuracy
    stays above ``unbounded_max_accuracy`` % (the attack cannot follow the gradient)."""
    cfg = inputs.config
    sub = inputs.subset()
    step = 2.5 * cfg.unbounded_eps / cfg.unbounded_steps
    attack = build("attack", "pgd", eps=cfg.unbounded_eps, step_size=step, steps=cfg.unbounded_steps,
                   norm="linf", start="none")
    flags = robust_flags(sub, attack)
    accuracy = 100.0 * int(flags.sum()) / flags.numel()
    values = {"eps": cfg.unbounded_eps, "steps": cfg.unbounded_steps, "step_size": step, "n": sub.n_examples,
              "accuracy": accuracy, "max_accuracy": cfg.unbounded_max_accuracy}
    text = (f"PGD-{cfg.unbounded_steps} with {threat_text('linf', cfg.unbounded_eps)} (no random start) leaves "
            f"{pct(accuracy)} accuracy on the first {sub.n_examples} images")
    if accuracy > cfg.unbounded_max_accuracy:
        return flagged(f"{text} (> {cfg.unbounded_max_accuracy:g} %): gradient-based attacks do not reach "
                       "images any attack can reach; suspect masked gradients (the zero_gradient check, "
                       "non-differentiable layers, saturated logits)", **values)
    return passed(f"{text} (≤ {cfg.unbounded_max_accuracy:g} %)", **values)


def check_black_box(inputs: CheckInputs) -> CheckResult:
    """At the threat model of the AutoAttack metric (else the PGD metric), Square (AutoAttack's, with
    ``square_queries`` queries) and/or PGD crafted on the recipe's teacher (transfer; ``black_box``
    picks, by default transfer when there is a teacher, else Square), on the first n images, against
    the white-box attacks' per-image results there (robust = robust under each): flagged when a
    black-box attack's accuracy is lower by more than ``margin`` points and beyond noise (one-sided
    exact sign test, p < ``alpha``)."""
    cfg = inputs.config
    reference = _reference_threat(inputs)
    if reference is None:
        return not_run("no PGD or AutoAttack result with per-image records in this evaluation")
    norm, eps = reference.norm, reference.eps
    white = [r for r in inputs.white_box() if r.same_threat(norm, eps)]
    white_flags = torch.stack([r.flags[: inputs.n] for r in white]).all(dim=0)
    white_name = " & ".join(r.key for r in white)
    sub = inputs.subset()
    lines, details, skipped, any_flag = [], {}, [], False
    attacks = {("square", "Square"): lambda: _square_flags(sub, norm, eps, cfg.square_queries),
               ("transfer_from_teacher", "transfer from the teacher"): lambda: _transfer_flags(sub, inputs, norm, eps)}
    chosen = _black_box_attacks(cfg.black_box, has_teacher=sub.teacher is not None)
    for (key, name), run in attacks.items():
        if key not in chosen:
            continue
        flags, reason = run()
        if flags is None:
            skipped.append(f"{name}: {reason}")
            continue
        drop = Drop.of(white_flags, flags)
        is_flagged = drop.is_flagged(cfg.margin, cfg.alpha)
        any_flag |= is_flagged
        lines.append(f"{name} {pct(100.0 * drop.other / drop.n)} ({_drop_text(drop)})")
        details[key] = {**drop.as_dict(), "flagged": is_flagged}
    values = {"threat": {"norm": norm, "eps": eps}, "white_box": [r.key for r in white], "results": details,
              "not_run": skipped, "margin": cfg.margin, "alpha": cfg.alpha}
    if not details:
        return not_run("; ".join(skipped), **values)
    text = (f"{threat_text(norm, eps)}, first {inputs.n} images: white-box ({white_name}) "
            f"{pct(100.0 * int(white_flags.sum()) / inputs.n)}; " + "; ".join(lines))
    tail = f" (not run: {'; '.join(skipped)})" if skipped else ""
    if any_flag:
        return flagged(f"{text}; drop > margin {cfg.margin:g} and p < {cfg.alpha:g}: a black-box attack beats "
                       "the white-box ones, a sign of gradient masking; the white-box numbers overestimate "
                       "robustness" + tail, **values)
    return passed(text + tail, **values)


def _black_box_attacks(choice: str, *, has_teacher: bool) -> tuple[str, ...]:
    """``[eval.checks] black_box`` → the attacks to run ("auto": transfer when there is a teacher)."""
    if choice == "auto":
        return ("transfer_from_teacher",) if has_teacher else ("square",)
    return {"square": ("square",), "transfer": ("transfer_from_teacher",),
            "both": ("square", "transfer_from_teacher")}[choice]


def _reference_threat(inputs: CheckInputs) -> Robust | None:
    """The AutoAttack metric's result (the robust number usually reported), else the first PGD metric's."""
    own = [r for r in inputs.white_box() if not r.key.startswith("eps_curve@") and r.metric is not None]
    return next((r for r in own if r.attack == "autoattack"), None) or next(iter(own), None)


def _square_flags(ctx: EvalContext, norm: str, eps: float, queries: int) -> tuple[Tensor | None, str]:
    if norm not in SQUARE_NORMS:
        return None, f"Square has no {norm} version"
    square = build("metric", "autoattack", version="custom", attacks=["square"], norm=norm, eps=eps,
                   n_queries=queries, key="square")
    try:
        square.evaluate(ctx)
    except PluginError as exc:  # no AutoAttack package: a reason, not a failure
        return None, str(exc)
    return ctx.records["square"], ""


def _transfer_flags(ctx: EvalContext, inputs: CheckInputs, norm: str, eps: float) -> tuple[Tensor | None, str]:
    if ctx.teacher is None:
        return None, "the recipe has no teacher"
    pgd = next((r for r in inputs.white_box("pgd") if r.same_threat(norm, eps) and pgd_settings(r)), None)
    settings = pgd_settings(pgd) if pgd is not None else {"eps": eps, "norm": norm, "step_size": eps / 4, "steps": 20}
    attack = build("attack", "pgd", **settings)
    return robust_flags(ctx, attack, source=ctx.teacher, stream=TRANSFER_STREAM), ""
