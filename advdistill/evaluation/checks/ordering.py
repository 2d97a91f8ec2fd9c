"""Check ``ordering``: AutoAttack ≤ PGD ≤ clean, robust accuracy falling with ε, and per image:
no image robust under an attack but misclassified clean."""

from __future__ import annotations

from collections import defaultdict

from torch import Tensor

from advdistill.evaluation.checks.base import CheckInputs, CheckResult, Robust, flagged, not_run, passed, threat_text

# accuracies are averages of 0/1 flags in percent: anything above this is a real inversion
TOLERANCE = 1e-9


def check_ordering(inputs: CheckInputs) -> CheckResult:
    """On every evaluated image: each robust accuracy ≤ clean; at the same norm and ε, AutoAttack ≤
    PGD; along ``eps_curve``, accuracy does not rise with ε; per image (where records exist), the
    images robust under an attack but misclassified clean (x itself is an adversarial example the
    attack missed; impossible for AutoAttack, which attacks only correctly classified images)."""
    clean = inputs.values.get("clean")
    if not isinstance(clean, (int, float)):
        return not_run("no clean accuracy in this evaluation (add the `clean` metric)")
    if not inputs.robust:
        return not_run("no robust accuracy in this evaluation (add e.g. the `pgd` metric)")
    problems, facts = [], []
    clean_flags = inputs.records.get("clean")
    above, inverted = [], []
    for r in inputs.robust:
        reference = _on_prefix(clean, clean_flags, r.n)
        if reference is None:
            facts.append(f"{r.key} (first {r.n} images) not compared with clean: no per-image clean record")
        elif r.accuracy > reference + TOLERANCE:
            above.append(r)
            problems.append(f"{r.describe()} {r.accuracy:.2f} > clean {reference:.2f}{_prefix_text(r.n)}")
    for aa, pgd in _aa_vs_pgd(inputs.robust):
        reference = _on_prefix(pgd.accuracy, pgd.flags, aa.n)
        if reference is None:
            facts.append(f"AA (first {aa.n} images) not compared with {pgd.key}: no per-image {pgd.key} record")
            continue
        wrong = aa.accuracy > reference + TOLERANCE
        inverted += [(aa, pgd)] if wrong else []
        text = f"AA {aa.accuracy:.2f} {'>' if wrong else '≤'} {pgd.key} {reference:.2f}{_prefix_text(aa.n)} " \
               f"({threat_text(aa.norm, aa.eps)})"
        (problems if wrong else facts).append(text)
    rising = _rising_with_eps(inputs.robust)
    problems += rising
    per_image = {}
    if clean_flags is not None:
        for r in inputs.robust:
            if r.flags is not None and r.flags.shape == clean_flags.shape:
                per_image[r.key] = int((r.flags & ~clean_flags).sum())
        problems += [f"{count} image(s) robust under {key} but misclassified clean"
                     for key, count in per_image.items() if count]
    values = {
        "clean": clean, "robust": {r.key: r.accuracy for r in inputs.robust},
        "aa_above_pgd": [f"{aa.key} > {pgd.key}" for aa, pgd in inverted],
        "above_clean": [r.key for r in above], "rising_with_eps": rising,
        "robust_but_misclassified": per_image if clean_flags is not None else None,
    }
    if problems:
        return flagged("; ".join(problems), **values)
    highest = max(inputs.robust, key=lambda r: r.accuracy)
    summary = [f"robust ≤ clean {clean:.2f} (highest: {highest.key} {highest.accuracy:.2f})", *facts]
    if clean_flags is not None:
        count = len(per_image)
        summary.append(f"per image: none robust but misclassified clean ({count} attack{'s' * (count != 1)})")
    else:
        summary.append("no per-image records to check image by image")
    return passed("; ".join(summary), **values)


def _on_prefix(accuracy: float, flags: Tensor | None, n: int | None) -> float | None:
    """``accuracy`` (over every evaluated image), or over the first ``n`` from ``flags`` (None: no flags)."""
    if n is None or (flags is not None and n >= flags.numel()):
        return accuracy
    if flags is None:
        return None
    return 100.0 * int(flags[:n].sum()) / n


def _prefix_text(n: int | None) -> str:
    return f" on the first {n} images" if n is not None else ""


def _aa_vs_pgd(robust: list[Robust]) -> list[tuple[Robust, Robust]]:
    """(AutoAttack, PGD) pairs at the same norm and ε."""
    return [(aa, pgd) for aa in robust if aa.attack == "autoattack"
            for pgd in robust if pgd.attack == "pgd" and pgd.same_threat(aa.norm, aa.eps)]


def _rising_with_eps(robust: list[Robust]) -> list[str]:
    """Where an attack's accuracy rises from one ε to the next larger one at the same norm."""
    curves: dict[tuple[str, str], list[Robust]] = defaultdict(list)
    for r in robust:
        if r.attack != "other" and r.norm is not None and r.eps is not None:
            curves[(r.attack, r.norm)].append(r)
    found = []
    for (attack, norm), points in curves.items():
        for small in points:
            for large in points:
                if large.eps > small.eps and large.accuracy > small.accuracy + TOLERANCE:
                    found.append(f"{attack} accuracy rises with ε: {small.key} {small.accuracy:.2f} at "
                                 f"{threat_text(norm, small.eps)} < {large.key} {large.accuracy:.2f} at "
                                 f"{threat_text(norm, large.eps)}")
    return found
