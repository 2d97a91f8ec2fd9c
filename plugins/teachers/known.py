"""The RobustBench teachers known here: each one's architecture and published accuracies.

A plain table without torch: ``[teacher] kind = "robustbench"`` checks its ``name`` against it when
the recipe is resolved, and ``advdistill teacher list`` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import define

from advdistill.errors import RecipeError, did_you_mean
from advdistill.interfaces import PublishedAccuracy

DATASET_CLASSES = {"cifar10": 10, "cifar100": 100}
THREAT_MODELS = ("Linf", "L2", "corruptions")
#: the norm ball of each RobustBench Lp threat model, at which its leaderboard numbers are measured
ROBUSTBENCH_THREATS: dict[str, tuple[str, float]] = {"Linf": ("linf", 8 / 255), "L2": ("l2", 0.5)}


@define(frozen=True)
class KnownTeacher:
    """One RobustBench model: its architecture here and its published accuracies (percent)."""

    name: str
    dataset: str
    threat_model: str
    #: the method's name in the IGDM paper (LTD, BDM-AT, IKL-AT)
    method: str
    #: the architecture as a model table: {"kind": ..., **params}
    model: Mapping[str, Any]
    #: IGDM paper Table 1: clean, PGD-20, AutoAttack (None: not in the paper)
    paper: tuple[float, float, float] | None
    #: RobustBench leaderboard: clean, AutoAttack
    leaderboard: tuple[float, float] | None
    #: where the numbers come from (the model's paper, RobustBench's model card)
    source: str = ""

    @property
    def num_classes(self) -> int:
        return DATASET_CLASSES[self.dataset]

    def published(self) -> PublishedAccuracy | None:
        """RobustBench's clean and AutoAttack accuracy (else the IGDM paper's), and the paper's PGD-20."""
        if self.leaderboard is None and self.paper is None:
            return None
        clean, autoattack = self.leaderboard or (self.paper[0], self.paper[2])
        norm, eps = ROBUSTBENCH_THREATS.get(self.threat_model, (None, None))
        return PublishedAccuracy(clean=clean, autoattack=autoattack, pgd20=self.paper[1] if self.paper else None,
                                 source=self.source, norm=norm, eps=eps)


def _known(*entries: KnownTeacher) -> dict[tuple[str, str, str], KnownTeacher]:
    return {(e.dataset, e.threat_model, e.name): e for e in entries}


def _source(name: str, dataset: str, paper: str, in_igdm_paper: bool = True) -> str:
    card = f"https://github.com/RobustBench/robustbench/blob/master/model_info/{dataset}/Linf/{name}.json"
    igdm = "; PGD-20: IGDM paper Table 1 (Lee, Cho & Kim, ICLR 2025, arXiv:2312.03286)" if in_igdm_paper else ""
    return f"RobustBench leaderboard, {dataset} Linf 8/255 ({card}); {paper}{igdm}"


_LTD = "Chen & Lee, LTD: Low Temperature Distillation for Robust Adversarial Training, arXiv:2111.02331"
_BDM = "Wang et al., Better Diffusion Models Further Improve Adversarial Training, ICML 2023, arXiv:2302.04638"
_IKL = "Cui et al., Decoupled Kullback-Leibler Divergence Loss, NeurIPS 2024, arXiv:2305.13948"


#: The teachers of the IGDM paper (Table 1) plus AdaAD's WRN-34-20, by (dataset, threat, name).
KNOWN: dict[tuple[str, str, str], KnownTeacher] = _known(
    KnownTeacher("Chen2021LTD_WRN34_10", "cifar10", "Linf", "LTD",
                 {"kind": "wrn_34_10"}, (85.21, 60.89, 56.94), (85.21, 56.94),
                 _source("Chen2021LTD_WRN34_10", "cifar10", _LTD)),
    KnownTeacher("Chen2021LTD_WRN34_10", "cifar100", "Linf", "LTD",
                 {"kind": "wrn_34_10", "sub_block1": True}, (64.07, 36.61, 30.57), (64.07, 30.59),
                 _source("Chen2021LTD_WRN34_10", "cifar100", _LTD)),
    KnownTeacher("Wang2023Better_WRN-28-10", "cifar10", "Linf", "BDM-AT",
                 {"kind": "dm_wrn_28_10", "dataset": "cifar10"}, (92.44, 70.63, 67.31), (92.44, 67.31),
                 _source("Wang2023Better_WRN-28-10", "cifar10", _BDM)),
    KnownTeacher("Wang2023Better_WRN-28-10", "cifar100", "Linf", "BDM-AT",
                 {"kind": "dm_wrn_28_10", "dataset": "cifar100"}, (72.58, 44.24, 38.83), (72.58, 38.83),
                 _source("Wang2023Better_WRN-28-10", "cifar100", _BDM)),
    KnownTeacher("Cui2023Decoupled_WRN-28-10", "cifar10", "Linf", "IKL-AT",
                 {"kind": "dm_wrn_28_10", "dataset": "cifar10"}, (92.16, 71.09, 67.73), (92.16, 67.73),
                 _source("Cui2023Decoupled_WRN-28-10", "cifar10", _IKL)),
    KnownTeacher("Cui2023Decoupled_WRN-28-10", "cifar100", "Linf", "IKL-AT",
                 {"kind": "dm_wrn_28_10", "dataset": "cifar100"}, (73.80, 44.14, 39.18), (73.85, 39.18),
                 _source("Cui2023Decoupled_WRN-28-10", "cifar100", _IKL)),
    # AdaAD's official code distils from this one (CIFAR-10); not in the IGDM paper
    KnownTeacher("Chen2021LTD_WRN34_20", "cifar10", "Linf", "LTD",
                 {"kind": "wideresnet", "depth": 34, "widen_factor": 20}, None, (86.03, 57.71),
                 _source("Chen2021LTD_WRN34_20", "cifar10", _LTD, in_igdm_paper=False)),
)


def known_names(dataset: str | None = None, threat_model: str | None = None) -> list[str]:
    return sorted({e.name for e in KNOWN.values()
                   if dataset in (None, e.dataset) and threat_model in (None, e.threat_model)})


def lookup(name: str, dataset: str, threat_model: str) -> KnownTeacher:
    """The table entry for a RobustBench name, or a RecipeError naming the close/known ones."""
    entry = KNOWN.get((dataset, threat_model, name))
    if entry is not None:
        return entry
    elsewhere = sorted(f"{e.dataset}/{e.threat_model}" for e in KNOWN.values() if e.name == name)
    if elsewhere:
        raise RecipeError(
            f"RobustBench model {name!r} is known here for {', '.join(elsewhere)}, "
            f"not for {dataset}/{threat_model}."
        )
    names = known_names(dataset, threat_model)
    raise RecipeError(
        f"Unknown RobustBench model {name!r} for {dataset}/{threat_model}.{did_you_mean(name, names)} "
        f"Known: {', '.join(names) or 'none'} (`advdistill teacher list`). For another RobustBench model, "
        "give its architecture too: model = {kind = \"wideresnet\", depth = 28, widen_factor = 10}."
    )
