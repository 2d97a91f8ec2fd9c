"""RobustBench model-zoo teachers read from local files (nothing is downloaded).

``[teacher] kind = "robustbench"`` with ``name = "Chen2021LTD_WRN34_10"`` reads
``{model_dir}/{dataset}/{threat_model}/{name}.safetensors`` (preferred) or, only with
``trust_pickle = true``, ``{name}.pt`` — RobustBench's own layout, so a ``models/`` folder
filled by ``robustbench.utils.load_model`` works as is. The architecture is the one
RobustBench uses for that name (table :data:`KNOWN`), built through the ``model`` registry;
the result is frozen, in eval mode, and takes [0, 1] inputs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import define, field
from attrs.validators import instance_of, optional

from advdistill.components import build_from_table
from advdistill.config import describe, one_of
from advdistill.engine.checkpoint import load_state_strict, read_metadata
from advdistill.errors import CheckpointError, RecipeError, did_you_mean
from advdistill.interfaces import PublishedAccuracy, TeacherLoader
from advdistill.torch_utils import freeze
from advdistill_plugins.teachers.files import (
    drop_redundant_buffers,
    is_safetensors,
    read_state_dict,
    sha256_file,
)

log = logging.getLogger(__name__)

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


def layout_dir(model_dir: str | Path, dataset: str, threat_model: str) -> Path:
    """``{model_dir}/{dataset}/{threat_model}`` with ``~`` and environment variables expanded."""
    return Path(os.path.expandvars(os.path.expanduser(str(model_dir)))) / dataset / threat_model


def convert_command(src: Path, dataset: str, threat_model: str, *, name: str,
                    model: Mapping[str, Any] | None = None) -> str:
    """The ``advdistill teacher convert`` command line turning ``src`` into the safetensors beside it.

    :param model: the architecture table for a name not in :data:`KNOWN` (``--arch KIND --param k=v``).
    """
    dst = src.with_suffix(".safetensors")
    if model is None:
        arch = f"--arch {name}"
    else:
        params = " ".join(f"--param {k}={_toml(v)}" for k, v in model.items() if k != "kind")
        arch = f"--arch {model['kind']} {params}".rstrip()
    extra = f" --threat-model {threat_model}" if threat_model != "Linf" else ""
    return f"advdistill teacher convert {src} {dst} {arch} --dataset {dataset}{extra}"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # bare words are strings to --param; others need TOML quotes
        return value if value.isidentifier() else "'" + json.dumps(value) + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_toml(v) for v in value) + "]"
    return repr(value)


@describe("64 hexadecimal digits")
def _is_sha256(_instance, attribute, value: str | None) -> None:
    if value is not None and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
        raise ValueError(f"'{attribute.name}' must be 64 hexadecimal digits (a SHA-256), got {value!r}")


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


@define(frozen=True, kw_only=True)
class RobustBenchConfig:
    #: the RobustBench model name, e.g. "Chen2021LTD_WRN34_10" (`advdistill teacher list`)
    name: str = field(validator=instance_of(str))
    #: RobustBench's model directory ("models" is its default); ~ and $VARS are expanded
    model_dir: str = field(default="models", validator=instance_of(str))
    #: the data set the teacher was trained on (picks the file's folder and the class count)
    dataset: str = field(default="cifar10", validator=one_of(*DATASET_CLASSES))
    #: RobustBench's threat model folder
    threat_model: str = field(default="Linf", validator=one_of(*THREAT_MODELS))
    #: read a .pt (pickle) file; pickle can run code from the file, so only for files you trust
    trust_pickle: bool = field(default=False, validator=instance_of(bool))
    #: expected SHA-256 of the file (or of the .pt a converted file was made from)
    sha256: str | None = field(
        default=None, converter=_lower, validator=optional([instance_of(str), _is_sha256])
    )
    #: an explicit weight file instead of the RobustBench layout
    path: str | None = field(default=None, validator=optional(instance_of(str)))
    #: the architecture ({kind = "...", ...}); needed only for names not in the table
    model: dict[str, Any] | None = field(default=None, validator=optional(instance_of(dict)))

    def __attrs_post_init__(self) -> None:
        if self.model is None:
            lookup(self.name, self.dataset, self.threat_model)  # fail at recipe check, not mid-run
        elif not isinstance(self.model.get("kind"), str):
            raise ValueError("'model' needs kind = \"<architecture>\", e.g. {kind = \"wideresnet\"}")


class RobustBenchTeacher(TeacherLoader):
    """A RobustBench model-zoo teacher from ``{model_dir}/{dataset}/{threat_model}/{name}.safetensors``."""

    Config = RobustBenchConfig

    @property
    def num_classes(self) -> int:
        """The number of classes of the teacher's data set (10 for CIFAR-10, 100 for CIFAR-100)."""
        return DATASET_CLASSES[self.config.dataset]

    def architecture(self) -> dict[str, Any]:
        """The model table of the teacher's architecture (``kind`` plus parameters)."""
        cfg = self.config
        if cfg.model is not None:
            return dict(cfg.model)
        return dict(lookup(cfg.name, cfg.dataset, cfg.threat_model).model)

    def published_accuracy(self) -> PublishedAccuracy | None:
        """The accuracies published for a name of :data:`KNOWN`; None for a model given by ``model``."""
        cfg = self.config
        if cfg.model is not None:
            return None
        return lookup(cfg.name, cfg.dataset, cfg.threat_model).published()

    def expected_files(self) -> tuple[Path, Path]:
        """The ``.safetensors`` and ``.pt`` paths of the RobustBench layout."""
        cfg = self.config
        folder = layout_dir(cfg.model_dir, cfg.dataset, cfg.threat_model)
        return folder / f"{cfg.name}.safetensors", folder / f"{cfg.name}.pt"

    def locate(self) -> Path:
        """The weight file to read; a missing or untrusted file is a CheckpointError saying what to do."""
        cfg = self.config
        where = f"RobustBench model {cfg.name!r} ({cfg.dataset}, {cfg.threat_model})"
        if cfg.path is not None:
            path = Path(os.path.expandvars(os.path.expanduser(cfg.path)))
            if not path.is_file():
                raise CheckpointError(f"[teacher] path = {cfg.path!r} ({where}): no file {path.resolve()}")
            if not is_safetensors(path) and not cfg.trust_pickle:
                raise CheckpointError(self._refusal(path))
            return path
        st, pt = self.expected_files()
        if st.is_file():
            return st
        if pt.is_file():
            if not cfg.trust_pickle:
                raise CheckpointError(self._refusal(pt))
            return pt
        folder = st.parent
        raise CheckpointError(
            f"{where} not found: expected {st.resolve()} (or {pt.name} beside it with trust_pickle = true). "
            f"It comes from the RobustBench model zoo: on a machine with internet, "
            f"`python -c \"from robustbench.utils import load_model; load_model('{cfg.name}', "
            f"model_dir='models', dataset='{cfg.dataset}', threat_model='{cfg.threat_model}')\"` saves "
            f"models/{cfg.dataset}/{cfg.threat_model}/{cfg.name}.pt; copy it to {folder.resolve()}/ and "
            "convert it: "
            f"{self._convert(pt)}. "
            "Or set [teacher] model_dir (or path) to where the file is."
        )

    def _convert(self, path: Path) -> str:
        cfg = self.config
        return convert_command(path, cfg.dataset, cfg.threat_model, name=cfg.name, model=cfg.model)

    def _refusal(self, path: Path) -> str:
        return (
            f"{path} is a pickle file (.pt): loading pickle can run arbitrary code from the file, so "
            "advdistill reads it only if you trust where it came from. Either convert it once to safetensors "
            "(the .safetensors beside it is then used): "
            f"{self._convert(path)} — or set [teacher] trust_pickle = true."
        )

    def check_files(self) -> None:
        self.locate()

    def verify(self, path: Path) -> None:
        """Check ``sha256`` against the file, or against the source recorded in a converted file."""
        expected = self.config.sha256
        if expected is None:
            return
        actual = sha256_file(path)
        if actual == expected:
            return
        source = None
        if is_safetensors(path):
            source = read_metadata(path).get("source_sha256")
        if source == expected:
            log.info("%s was converted from a file with the expected SHA-256 %s", path, expected)
            return
        made_from = f" (converted from a file with SHA-256 {source})" if source else ""
        raise CheckpointError(
            f"{path} has SHA-256 {actual}{made_from}, but [teacher] sha256 = {expected!r}: the file is not "
            "the expected one (damaged, truncated, or a different model). Replace it, or fix sha256."
        )

    def load(self, *, num_classes: int, in_chans: int):
        cfg = self.config
        expected_classes = DATASET_CLASSES[cfg.dataset]
        if num_classes != expected_classes or in_chans != 3:
            raise RecipeError(
                f"[teacher] RobustBench model {cfg.name!r} is a {cfg.dataset} model ({expected_classes} "
                f"classes, RGB), but the data set has {num_classes} classes and {in_chans} channel(s); set "
                "[teacher] dataset to the training data's."
            )
        path = self.locate()
        self.verify(path)
        state = read_state_dict(
            path, trust_pickle=cfg.trust_pickle, refusal=self._refusal(path),
            convert_hint=f"Put that file at {path} (or convert it: {self._convert(path)}).",
        )
        model = build_from_table("model", self.architecture()).build(num_classes=num_classes, in_chans=in_chans)
        state = drop_redundant_buffers(model, state, source=str(path))
        load_state_strict(model, state, source=f"{path} ({cfg.name}, {cfg.dataset})")
        if not is_safetensors(path):
            log.info("Loaded pickle file %s; %s skips unpickling next time", path,
                     self._convert(path))
        return freeze(model)
