"""Per-example records of a run (``per_example.safetensors``) and the discordant pairs of two runs.

The file format is the shared one (docs/metrics.md): uint8 tensors ``"<checkpoint>/<report_key>"``
(1 = this test image was correct / robust) plus ``"index"`` (positions in the test split).
:func:`read_per_example` reads it directly; it is meant to give way to the evaluation's own
reader (``advdistill.evaluation.records.read_per_example``) once that exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from attrs import define

RECORDS_FILE = "per_example.safetensors"


@define(frozen=True)
class PerExample:
    """``outcomes[checkpoint][report_key]``: bool (N,), aligned with ``index`` (int64, N)."""

    index: torch.Tensor
    outcomes: dict[str, dict[str, torch.Tensor]]
    metadata: dict[str, str]


def read_per_example(run_dir_or_file: str | Path) -> PerExample:
    """The per-example records of a run directory (or the file); raises OSError/ValueError when unreadable."""
    from safetensors import SafetensorError, safe_open

    path = Path(run_dir_or_file)
    if path.is_dir():
        path = path / RECORDS_FILE
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118 (not a dict)
    except SafetensorError as exc:
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from None
    if "index" not in tensors:
        raise ValueError(f"{path} has no 'index' tensor")
    index = tensors.pop("index").to(torch.int64)
    outcomes: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        checkpoint, _, key = name.partition("/")
        if not key or tensor.shape != index.shape:
            raise ValueError(f"{path}: tensor {name!r} of shape {tuple(tensor.shape)} does not match the index")
        outcomes.setdefault(checkpoint, {})[key] = tensor.bool()
    return PerExample(index, outcomes, metadata)


def reported_checkpoint(report: Mapping[str, Any], records: PerExample) -> str | None:
    """The checkpoint whose numbers ``report.json`` gives, as named in the records (None: cannot tell)."""
    chosen = report.get("checkpoint")
    if isinstance(chosen, Mapping):  # report.json with a checkpoint table: {"name": "best", ...}
        name = chosen.get("name")
    elif isinstance(chosen, str):  # older reports give the checkpoint's path
        name = Path(chosen).name.removesuffix(".safetensors")
    else:
        name = None
    if name in records.outcomes:
        return name
    return next(iter(records.outcomes)) if len(records.outcomes) == 1 else None


def discordant(first_index: torch.Tensor, first: torch.Tensor,
               second_index: torch.Tensor, second: torch.Tensor) -> tuple[int, int, int]:
    """(b, c, n) over the test images both runs evaluated: b = first right and second wrong,
    c = first wrong and second right, n = images in common."""
    position = {int(i): k for k, i in enumerate(second_index.tolist())}
    pairs = [(k, position[int(i)]) for k, i in enumerate(first_index.tolist()) if int(i) in position]
    if not pairs:
        return 0, 0, 0
    rows_first, rows_second = (torch.tensor(p, dtype=torch.int64) for p in zip(*pairs))
    a, b = first[rows_first], second[rows_second]
    return int((a & ~b).sum()), int((~a & b).sum()), len(pairs)
