"""The config classes of the teacher loaders: what a ``[teacher]`` table may set.

Kept apart from the components, without torch, so that resolving a recipe (``advdistill recipe
show/check``) validates a table without importing the component's module.
"""

from __future__ import annotations

from typing import Any

from attrs import define, field
from attrs.validators import instance_of, optional

from advdistill.config import describe, one_of
from advdistill_plugins.teachers.known import DATASET_CLASSES, THREAT_MODELS, lookup


@define(frozen=True, kw_only=True)
class CheckpointTeacherConfig:
    #: a .safetensors file written by `advdistill train` (e.g. runs/x/checkpoints/best.safetensors)
    path: str = field(validator=instance_of(str))
    #: the architecture as a model table ({kind = "small_cnn", widths = [32, 64]}); default: the
    #: [student] of the run's recipe.json next to the checkpoint
    model: dict[str, Any] | None = field(default=None, validator=optional(instance_of(dict)))


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
