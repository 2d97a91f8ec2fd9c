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

from advdistill.components import build_from_table
from advdistill.errors import CheckpointError, RecipeError
from advdistill.interfaces import PublishedAccuracy, TeacherLoader
from advdistill_plugins.teachers.config import RobustBenchConfig
from advdistill_plugins.teachers.known import DATASET_CLASSES, lookup

# re-exported: `advdistill teacher` and the tests import the table from here
from advdistill_plugins.teachers.known import KNOWN as KNOWN
from advdistill_plugins.teachers.known import ROBUSTBENCH_THREATS as ROBUSTBENCH_THREATS
from advdistill_plugins.teachers.known import THREAT_MODELS as THREAT_MODELS
from advdistill_plugins.teachers.known import KnownTeacher as KnownTeacher
from advdistill_plugins.teachers.known import known_names as known_names
from advdistill_plugins.teachers.layout import is_safetensors, sha256_file
from advdistill_plugins.teachers.layout import layout_dir as layout_dir

log = logging.getLogger(__name__)


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
            from advdistill.engine.checkpoint import read_metadata

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
        # torch is imported here, not at the top: `recipe check` looks for the file without it
        from advdistill.engine.checkpoint import load_state_strict
        from advdistill.torch_utils import freeze
        from advdistill_plugins.teachers.files import drop_redundant_buffers, read_state_dict

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
