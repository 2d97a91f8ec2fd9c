"""Which checkpoints of a run an evaluation covers, and the rule that picks the reported one.

A run directory has ``checkpoints/last.safetensors`` (after the final epoch), with a
periodic evaluation ``checkpoints/best.safetensors`` (the epoch with the best validation
score), and with the ``ema`` callback ``checkpoints/ema.safetensors`` (the exponential moving
average of the weights). ``advdistill eval RUN`` evaluates each one the run has; the report's
top-level numbers are those of ``[eval] checkpoint`` ("last" by default, see docs/metrics.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from attrs import define

from advdistill.engine.checkpoint import read_metadata
from advdistill.errors import CheckpointError

RUN_CHECKPOINTS = ("last", "best", "ema")
#: what writes each checkpoint of a run other than last (for the note when one is missing)
_WRITTEN_BY = {"best": "a periodic evaluation ([callbacks.<label>] kind = \"periodic_eval\")",
               "ema": "the ema callback ([callbacks.<label>] kind = \"ema\")"}


@define(frozen=True)
class CheckpointChoice:
    """One checkpoint to evaluate: its label in the report, its file, and why it is there."""

    name: str  # "last", "best", "ema", or the file's stem
    path: Path
    rule: str  # "last" | "best" | "ema" | "explicit"


def selected_by(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """How a ``best`` checkpoint was chosen (metric, split, epoch, value), from its metadata.

    Runs from before the validation split chose best on test images and wrote no ``"split"``:
    they get ``"split": "test"`` and ``"legacy": true``.
    """
    if "best_metric" not in metadata:
        return None
    split = metadata.get("split")
    found = {"metric": metadata["best_metric"], "split": split or "test", "epoch": metadata.get("epoch"),
             "value": metadata.get("best")}
    if split is None:
        found["legacy"] = True
    return found


def describe(choice: CheckpointChoice, metadata: dict[str, Any]) -> dict[str, Any]:
    """The report's ``checkpoint`` entry: name, path, epoch, rule, selected_by."""
    return {"name": choice.name, "path": str(choice.path), "epoch": metadata.get("epoch"), "rule": choice.rule,
            "selected_by": selected_by(metadata)}


def weights_identity(path: Path, metadata: dict[str, Any]) -> str:
    """An identity of a checkpoint's weights: its save's id and epoch, else the file's SHA-256."""
    if metadata.get("checkpoint_id"):
        return f"{metadata['checkpoint_id']}@{metadata.get('epoch')}"
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def explicit(path: str | Path) -> CheckpointChoice:
    """A checkpoint file named by its path (``--checkpoint PATH``)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint not found: {path}")
    read_metadata(path)  # a clear error for a file that is not a checkpoint
    return CheckpointChoice(path.stem, path, "explicit")


def run_checkpoints(
    run_dir: Path, requested: str | None, default: str
) -> tuple[list[CheckpointChoice], str, str | None]:
    """The checkpoints to evaluate in ``run_dir``, the reported one, and a note when that is not
    the one asked for (a fallback from ``best`` to ``last``).

    :param requested: ``None`` (``last``, ``best`` and ``ema``, those that exist), ``"last"``,
        ``"best"`` or ``"ema"`` (falls back to last when the run has none) or a path.
    :param default: ``[eval] checkpoint``: which one is reported when several are evaluated.
    """
    folder = Path(run_dir) / "checkpoints"
    found = {name: folder / f"{name}.safetensors" for name in RUN_CHECKPOINTS}
    found = {name: path for name, path in found.items() if path.exists()}
    if requested not in (None, *RUN_CHECKPOINTS):
        choice = explicit(requested)
        return [choice], choice.name, None
    wanted = [requested] if requested else list(RUN_CHECKPOINTS)
    if len(wanted) == 1 and wanted[0] != "last" and wanted[0] not in found:
        wanted = ["last"]  # --checkpoint best (or ema) on a run without one
    choices = [CheckpointChoice(name, found[name], name) for name in wanted if name in found]
    if not choices:
        missing = " or ".join(f"{name}.safetensors" for name in wanted)
        raise CheckpointError(f"{folder} holds no {missing}: is {run_dir} a finished (or started) run directory?")
    target = requested or default
    names = [c.name for c in choices]
    reported = target if target in names else names[0]
    note = None
    if reported != target:
        written_by = f" ({target} exists only with {_WRITTEN_BY[target]})" if target in _WRITTEN_BY else ""
        note = (f"{target!r} was asked for, but the run has no checkpoints/{target}.safetensors"
                f"{written_by}: {reported!r} is reported")
    return choices, reported, note
