"""Checking a teacher before it teaches: its clean and quick robust accuracy on test images, beside
the numbers published for it.

Two rules, both from the binomial standard error of an accuracy measured on N images:

- **below the published clean accuracy**: with p the published clean accuracy (on all M test
  images), the measured one must not fall more than
  ``tolerance = 3·sqrt(p(1 − p)/N)·sqrt((M − N)/(M − 1)) + 0.5`` points below it (three standard
  errors of the mean of N images drawn from the M, plus half a point for numerics: GPU kernels,
  precision). A correct teacher fails this about once in 700 audits;
- **near chance** (any teacher): with chance c = 1/C, the clean accuracy must not be, at three
  standard errors, below ``f = c + 0.1·(1 − c)`` (a tenth of the way from chance to 100 %:
  19 % for 10 classes, 10.9 % for 100): refused when ``acc < f − 3·sqrt(f(1 − f)/N)``. On a
  handful of images nothing is refused: they cannot tell.

The robust accuracy is measured at the run's threat model (the recipe's ``[attack]`` norm and ε)
when the audit comes from a recipe, else at the published numbers' (RobustBench: Linf 8/255, L2
0.5); it is compared with the published robust numbers only when both are at the same ε.

The images are the first N of the *test* split: the teachers were trained on the whole training
set (RobustBench's too), so a held-out part of it would flatter them; auditing the teacher on test
images selects nothing about the student.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from attrs import asdict, define, field
from torch import Tensor, nn

from advdistill.components import build
from advdistill.errors import CheckpointError, RecipeError
from advdistill.evaluation.runner import run_metrics
from advdistill.evaluation.threat import FROM_DEFAULT, PAPER_EPS, ThreatModel, resolve_threat
from advdistill.interfaces import PublishedAccuracy

#: the quick robust attacks: label -> (metric kind, its parameters, report key)
ATTACKS: dict[str, tuple[str, dict[str, Any], str]] = {
    "pgd20": ("pgd", {"steps": 20, "key": "pgd20"}, "pgd20"),
    "apgd-ce": ("autoattack", {"version": "custom", "attacks": ["apgd-ce"], "key": "apgd_ce"}, "apgd_ce"),
}
#: the cheap audit ``train`` runs: clean accuracy on this many test images, PGD-20 on the first ROBUST_N
TRAIN_N, TRAIN_ROBUST_N = 1000, 100
SIGMAS, SLACK_POINTS, FLOOR_SHARE = 3.0, 0.5, 0.1

LIKELY_CAUSES = (
    "Likely causes: (1) input normalization: the weights expect another mean/std than the architecture "
    "applies, or the images are normalized twice (advdistill feeds [0, 1] images; RobustBench models "
    "normalize inside); (2) the wrong file: another model saved under this name, or a truncated or "
    "half-converted checkpoint (set [teacher] sha256 to catch it); (3) the architecture variant: e.g. "
    "Chen2021LTD_WRN34_10 on CIFAR-100 needs sub_block1 = true, DMWideResNet its activation and padding; "
    "(4) the wrong data set: a CIFAR-10 model on CIFAR-100 images, or another test split or label order."
)


def clean_tolerance(published: float, n: int, population: int) -> float:
    """How far (points) a clean accuracy measured on ``n`` of ``population`` test images may fall
    below the ``published`` one (%, on all of them) before the audit calls it an error."""
    p = min(max(published / 100.0, 0.0), 1.0)
    finite = math.sqrt(max(population - n, 0) / (population - 1)) if population > 1 else 0.0
    return 100.0 * SIGMAS * math.sqrt(p * (1 - p) / max(n, 1)) * finite + SLACK_POINTS


def chance_limit(num_classes: int, n: int) -> float:
    """The clean accuracy (%) below which a teacher counts as near chance on ``n`` images."""
    chance = 1.0 / num_classes
    floor = chance + FLOOR_SHARE * (1 - chance)
    return 100.0 * (floor - SIGMAS * math.sqrt(floor * (1 - floor) / max(n, 1)))


@define(frozen=True, kw_only=True)
class TeacherAudit:
    """What the audit measured (accuracies in %) and how it compares with the published numbers."""

    name: str
    dataset: str
    num_classes: int
    n: int
    clean: float
    robust_n: int = 0
    attack: str | None = None
    robust: float | None = None
    #: the threat model of ``robust``: {"norm", "eps", "source"}
    threat: dict[str, Any] | None = None
    published: PublishedAccuracy | None = None
    tolerance: float | None = None
    chance_limit: float = 0.0
    #: "ok", "near_chance" or "below_published"
    status: str = "ok"
    warnings: tuple[str, ...] = field(default=(), converter=tuple)

    def record(self) -> dict[str, Any]:
        """The ``{"event": "teacher_audit", ...}`` record of ``metrics.jsonl``."""
        out = asdict(self, recurse=True)
        out["warnings"] = list(self.warnings)
        return {"event": "teacher_audit", **out}

    def threat_differs_from_published(self) -> bool:
        """The robust accuracy was measured at another threat model than the published numbers."""
        published = published_threat(self.published)
        return self.threat is None or published is None or not published.same(
            ThreatModel(self.threat["norm"], float(self.threat["eps"])))

    def message(self) -> str:
        """Why the teacher is refused (empty when ``status`` is "ok")."""
        where = f"the teacher {self.name} ({self.dataset}): clean accuracy {self.clean:.2f} % on the first " \
                f"{self.n} test images"
        if self.status == "near_chance":
            return (f"{where[0].upper()}{where[1:]} is near chance ({100 / self.num_classes:.2f} % for "
                    f"{self.num_classes} classes; the limit at this N is {self.chance_limit:.2f} %): the teacher "
                    f"is broken (untrained weights, a wrong file, normalization or data set). " + LIKELY_CAUSES)
        if self.status == "below_published":
            pub = self.published
            return (f"{where[0].upper()}{where[1:]}, but {pub.clean:.2f} % is published for it, more than the "
                    f"tolerance of {self.tolerance:.2f} points below (3 binomial standard errors at N = {self.n} "
                    f"+ {SLACK_POINTS} points; source: {pub.source or 'unknown'}). " + LIKELY_CAUSES)
        return ""


def _robust_metric(attack: str, threat: ThreatModel) -> Any:
    if attack not in ATTACKS:
        raise RecipeError(f"unknown audit attack {attack!r}; valid: {', '.join(ATTACKS)}")
    kind, params, _ = ATTACKS[attack]
    return build("metric", kind, **params, norm=threat.norm, eps=threat.eps)


def published_threat(published: PublishedAccuracy | None) -> ThreatModel | None:
    """The threat model of the published robust numbers (None: unknown or not an Lp ball)."""
    if published is None or published.norm is None or published.eps is None:
        return None
    return ThreatModel(published.norm, float(published.eps), "published")


def audit_teacher(
    teacher: nn.Module,
    images: Tensor,
    labels: Tensor,
    *,
    num_classes: int,
    name: str = "teacher",
    dataset: str = "",
    published: PublishedAccuracy | None = None,
    n: int = TRAIN_N,
    robust_n: int | None = None,
    attack: str | None = "pgd20",
    threat: ThreatModel | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    seed: int = 0,
    show_progress: bool = False,
) -> TeacherAudit:
    """Measure ``teacher`` on the first ``n`` test ``images`` (uint8) and compare with ``published``.

    ``attack`` ("pgd20", "apgd-ce" or None) runs on the first ``robust_n`` (default ``n``) images
    at ``threat`` (default: the published numbers' threat model, else Linf 8/255); its accuracy
    is compared with the published robust numbers only when both were measured at the same ε.
    The global RNG is left as it was (the attacks draw from their own seeded generators).
    """
    threat = threat or published_threat(published) or ThreatModel("linf", PAPER_EPS["linf"], FROM_DEFAULT)
    device = torch.device(device)
    n = min(n, int(images.shape[0]))
    robust_n = n if robust_n is None else min(robust_n, n)
    common = dict(device=device, batch_size=batch_size, seed=seed, show_progress=show_progress)
    values, errors, _ = run_metrics(teacher, images[:n], labels[:n], {"clean": build("metric", "clean")}, **common)
    if errors:
        raise CheckpointError(f"could not evaluate the teacher {name}: {errors['clean']}")
    clean = values["clean"]
    robust = None
    if attack is not None and robust_n > 0:
        metric, key = _robust_metric(attack, threat), ATTACKS[attack][2]
        values, errors, _ = run_metrics(teacher, images[:robust_n], labels[:robust_n], {key: metric}, **common)
        if errors:
            raise CheckpointError(f"could not attack the teacher {name} with {attack}: {errors[key]}")
        robust = values[key]
    tolerance = clean_tolerance(published.clean, n, int(images.shape[0])) if published is not None else None
    limit = chance_limit(num_classes, n)
    status = "ok"
    if clean < limit:
        status = "near_chance"
    elif published is not None and clean < published.clean - tolerance:
        status = "below_published"
    warnings = _robust_warnings(attack, robust, robust_n, published, int(images.shape[0]), threat)
    return TeacherAudit(name=name, dataset=dataset, num_classes=num_classes, n=n, clean=clean,
                        robust_n=robust_n if robust is not None else 0, attack=attack if robust is not None else None,
                        robust=robust, threat=threat.to_json() if robust is not None else None,
                        published=published, tolerance=tolerance, chance_limit=limit, status=status,
                        warnings=warnings)


def _robust_warnings(attack: str | None, robust: float | None, n: int, published: PublishedAccuracy | None,
                     population: int, threat: ThreatModel) -> list[str]:
    """A robust accuracy clearly below its published reference (same rule as the clean one) is worth a look:
    PGD-20 against the published PGD-20, APGD-CE against AutoAttack (which APGD-CE alone cannot undercut).
    Numbers measured at another threat model than the published ones are not compared."""
    if robust is None or published is None or not threat.same(published_threat(published)):
        return []
    reference, label = (published.pgd20, "PGD-20") if attack == "pgd20" else (published.autoattack, "AutoAttack")
    if reference is None:
        return []
    tolerance = clean_tolerance(reference, n, population)
    if robust < reference - tolerance:
        return [f"{attack} accuracy {robust:.2f} % on {n} images is more than {tolerance:.2f} points below the "
                f"published {label} accuracy {reference:.2f} %: the teacher is less robust than published"]
    return []


def audit_for_training(recipe: Any, teacher: nn.Module, splits: Any, device: torch.device) -> dict[str, Any] | None:
    """The cheap audit ``train`` runs when the teacher is built (``[train] audit_teacher``).

    Returns the ``metrics.jsonl`` record, or None when the audit is off; a teacher near chance or
    below its published clean accuracy is a CheckpointError that says how to skip the audit.
    """
    if recipe.teacher is None or not recipe.train.audit_teacher:
        return None
    loader = recipe.teacher.build()
    published = loader.published_accuracy()
    audit = audit_teacher(
        teacher, splits.test_x, splits.test_y, num_classes=splits.info.num_classes,
        name=_teacher_name(recipe.teacher.to_json()), dataset=splits.info.name, published=published,
        n=TRAIN_N, robust_n=TRAIN_ROBUST_N, attack="pgd20", threat=resolve_threat(recipe), device=device,
        batch_size=recipe.eval.batch_size, seed=recipe.eval.seed,
    )
    if audit.status != "ok":
        raise CheckpointError(
            f"{audit.message()} Check it with `advdistill teacher audit {recipe.source or 'RECIPE'}`; "
            "to train anyway: --set train.audit_teacher=false."
        )
    return audit.record()


def _teacher_name(table: Mapping[str, Any]) -> str:
    """A readable name for a teacher table: its RobustBench name, its path, or its kind."""
    return str(table.get("name") or table.get("path") or table.get("kind"))
