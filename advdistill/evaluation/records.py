"""Per-example records: which test images each evaluated checkpoint got right, per metric.

Every evaluation writes ``per_example.safetensors`` into its output directory: a uint8 tensor
(N,) per ``"<checkpoint>/<report key>"`` (1 = correct for ``clean``, robust for an attack), e.g.
``last/pgd20``, ``best/autoattack``, ``last/eps_curve@0.0313725/pgd20``, plus ``"index"``
(int64 (N,)): the positions of the evaluated images in the test split. Metadata (each value a
JSON string): ``dataset``, ``split`` ("test"), ``n_examples``, ``n_test`` (size of the whole test
split), ``test_sha256`` (of the whole test split's images and labels), ``recipe_hash``,
``checkpoints`` (the labels present) and ``weights`` (label → identity of the weights they
were computed from). A later evaluation merges into the file: its tensors replace those of the
same name; a checkpoint whose weights changed loses its older tensors; a file made on other
test images (another data set, another ``--limit``) is replaced as a whole, as report.json is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from attrs import define
from torch import Tensor

from advdistill.errors import DataError
from advdistill.io import atomic_write
from advdistill.stats import PairedOutcome

log = logging.getLogger(__name__)

RECORDS_FILE = "per_example.safetensors"
INDEX = "index"


@define(frozen=True)
class PerExample:
    """The content of one ``per_example.safetensors``."""

    #: checkpoint label → report key → bool (N,)
    records: dict[str, dict[str, Tensor]]
    #: int64 (N,): positions of the evaluated images in the test split
    index: Tensor
    metadata: dict[str, Any]

    @property
    def dataset(self) -> str | None:
        return self.metadata.get("dataset")


def records_path(run_dir_or_file: str | Path) -> Path:
    """``per_example.safetensors`` of an evaluation directory (or the file itself)."""
    path = Path(run_dir_or_file)
    return path / RECORDS_FILE if path.is_dir() else path


def split_fingerprint(images: Tensor, labels: Tensor) -> str:
    """SHA-256 of a test split (shape, image bytes, labels): two runs pair only on the same images."""
    digest = hashlib.sha256(repr((tuple(images.shape), str(images.dtype))).encode())
    digest.update(np.ascontiguousarray(images.cpu().numpy()).tobytes())
    digest.update(np.ascontiguousarray(labels.cpu().to(torch.int64).numpy()).tobytes())
    return digest.hexdigest()


def read_per_example_file(run_dir_or_file: str | Path) -> PerExample:
    """Read ``per_example.safetensors`` (DataError when it is missing or not such a file)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = records_path(run_dir_or_file)
    if not path.exists():
        raise DataError(f"{path} not found: evaluate the run with this version of advdistill "
                        "(`advdistill eval RUN`) to record which test images each model got right.")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise DataError(f"{path} is not a readable per-example file: {exc}") from None
    metadata = {key: _json_or_text(value) for key, value in raw.items()}
    index = tensors.pop(INDEX, None)
    if index is None or index.dim() != 1:
        raise DataError(f"{path} has no 1-D \"index\" tensor: not an advdistill per-example file.")
    records: dict[str, dict[str, Tensor]] = {}
    for name, flags in tensors.items():
        checkpoint, slash, key = name.partition("/")
        if not slash or tuple(flags.shape) != tuple(index.shape):
            raise DataError(f"{path}: tensor {name!r} is not \"<checkpoint>/<report key>\" of shape "
                            f"{tuple(index.shape)}")
        records.setdefault(checkpoint, {})[key] = flags.bool()
    return PerExample(records, index.long(), metadata)


def read_per_example(run_dir_or_file: str | Path) -> dict[str, dict[str, Tensor]]:
    """The records of an evaluation: checkpoint label → report key → bool tensor (N,).

    The images are those at ``read_per_example_file(...).index`` in the test split.
    """
    return read_per_example_file(run_dir_or_file).records


def write_per_example(
    out: str | Path,
    records: Mapping[str, Mapping[str, Tensor]],
    *,
    index: Tensor,
    dataset: str,
    recipe_hash: str,
    test_sha256: str,
    n_test: int,
    weights: Mapping[str, str],
) -> Path:
    """Write (or merge into) ``per_example.safetensors`` in directory ``out`` (or the file ``out``).

    :param records: checkpoint label → report key → per-image flags (N,).
    :param weights: checkpoint label → an identity of its weights (a changed identity drops the
        label's older tensors).
    """
    from safetensors.torch import save_file

    path = Path(out) if Path(out).suffix == ".safetensors" else Path(out) / RECORDS_FILE
    index = index.to("cpu", torch.int64)
    tensors: dict[str, Tensor] = {}
    kept_weights: dict[str, str] = {}
    previous = _compatible_previous(path, index, dataset, test_sha256)
    if previous is not None:
        old_weights = previous.metadata.get("weights") or {}
        for checkpoint, keyed in previous.records.items():
            if checkpoint in weights and old_weights.get(checkpoint) != weights[checkpoint]:
                continue  # other weights under the same label: its old results are stale
            kept_weights[checkpoint] = old_weights.get(checkpoint)
            tensors.update({f"{checkpoint}/{key}": flags for key, flags in keyed.items()})
    for checkpoint, keyed in records.items():
        if "/" in checkpoint:
            raise ValueError(f"a checkpoint label must not contain '/': {checkpoint!r}")
        for key, flags in keyed.items():
            if tuple(flags.shape) != tuple(index.shape):
                raise ValueError(f"{checkpoint}/{key}: {tuple(flags.shape)} flags for {index.numel()} images")
            tensors[f"{checkpoint}/{key}"] = flags
    kept_weights.update(weights)
    tensors = {name: flags.to("cpu").to(torch.uint8).contiguous() for name, flags in tensors.items()}
    checkpoints = sorted({name.partition("/")[0] for name in tensors})
    metadata = {
        "dataset": dataset, "split": "test", "n_examples": int(index.numel()), "n_test": int(n_test),
        "test_sha256": test_sha256, "recipe_hash": recipe_hash, "checkpoints": checkpoints,
        "weights": {label: kept_weights[label] for label in checkpoints if kept_weights.get(label)},
    }
    payload = {**tensors, INDEX: index.contiguous()}
    encoded = {key: json.dumps(value) for key, value in metadata.items()}
    atomic_write(path, lambda tmp: save_file(payload, str(tmp), metadata=encoded))
    return path


def _compatible_previous(path: Path, index: Tensor, dataset: str, test_sha256: str) -> PerExample | None:
    """The file already at ``path`` if its records are on the same test images, else None."""
    if not path.exists():
        return None
    try:
        previous = read_per_example_file(path)
    except DataError as exc:
        log.warning("replacing %s: %s", path, exc)
        return None
    same = (previous.dataset == dataset and previous.metadata.get("test_sha256") == test_sha256
            and torch.equal(previous.index, index))
    if not same:
        log.warning("replacing %s: its records are on other test images (data set %s, %d images) than this "
                    "evaluation's (%s, %d images)", path, previous.dataset, previous.index.numel(), dataset,
                    index.numel())
        return None
    return previous


def paired_outcomes(a: PerExample, checkpoint_a: str, b: PerExample, checkpoint_b: str) -> dict[str, PairedOutcome]:
    """Per report key both have: the two checkpoints' outcomes on the test images both evaluated.

    Raises DataError when the two were evaluated on different test sets (another data set, or
    the same name with other images), or share no image.
    """
    if a.dataset != b.dataset:
        raise DataError(f"evaluated on different data sets ({a.dataset} and {b.dataset}): images cannot be paired")
    if a.metadata.get("test_sha256") != b.metadata.get("test_sha256"):
        raise DataError(f"evaluated on different {a.dataset} test images (other [data] settings): "
                        "images cannot be paired")
    for side, label, per_example in (("first", checkpoint_a, a), ("second", checkpoint_b, b)):
        if label not in per_example.records:
            raise DataError(f"the {side} run has no per-example records of checkpoint {label!r} "
                            f"(it has {', '.join(per_example.records) or 'none'})")
    common, at_a, at_b = np.intersect1d(a.index.numpy(), b.index.numpy(), assume_unique=True, return_indices=True)
    if common.size == 0:
        raise DataError("the two evaluations share no test image")
    at_a, at_b = torch.from_numpy(at_a), torch.from_numpy(at_b)
    flags_a, flags_b = a.records[checkpoint_a], b.records[checkpoint_b]
    outcomes = {}
    for key in sorted(set(flags_a) & set(flags_b)):
        x, y = flags_a[key][at_a], flags_b[key][at_b]
        outcomes[key] = PairedOutcome(
            n=int(common.size), correct_a=int(x.sum()), correct_b=int(y.sum()),
            only_a=int((x & ~y).sum()), only_b=int((~x & y).sum()),
        )
    return outcomes


def reported_checkpoint(report: Mapping[str, Any], per_example: PerExample) -> str:
    """The checkpoint whose records stand for a run: the one its report's numbers are."""
    checkpoint = report.get("checkpoint")
    if isinstance(checkpoint, Mapping) and checkpoint.get("name"):
        return str(checkpoint["name"])
    names = list(per_example.records)
    return names[0] if len(names) == 1 else "last"


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
