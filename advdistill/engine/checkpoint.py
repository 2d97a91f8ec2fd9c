"""Checkpoints: one self-contained training-state file, plus plain weight files, written atomically.

``last.state.safetensors`` is *the* checkpoint: one file holding everything an exact resume
needs (the model's weights, optimizer state, RNG states, epoch, best score), written through a
temporary file and renamed into place, so a kill at any moment leaves either the previous
complete checkpoint or the new one. ``<name>.safetensors`` holds only the model's
``state_dict`` (usable on its own as a teacher or for evaluation); it is exported from the
same save, after the state file, and carries the same ``checkpoint_id`` in its metadata, so
that a resume can tell whether an export was interrupted and rewrite it from the state file.

Older runs wrote the state file without the weights (``format`` 1); they resume from
``last.safetensors`` when both files carry the same ``checkpoint_id``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from advdistill.errors import CheckpointError
from advdistill.io import atomic_write

#: the training-state file format: 2 holds the model's weights too (one file = one checkpoint)
STATE_FORMAT = 2
_MODEL_PREFIX = "model/"
_COMPONENT_PREFIX = "component/"


#: the names :func:`atomic_write` gives its temporary files: ``.<target name>.<random>.tmp``
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


def remove_stale_temp_files(directories: Iterable[Path]) -> list[Path]:
    """Delete the temporary files that interrupted :func:`atomic_write` calls left in ``directories``.

    Call it only while holding the directory's lock (a running writer's file would go too).
    """
    removed = []
    for directory in directories:
        if not Path(directory).is_dir():
            continue
        for path in sorted(Path(directory).iterdir()):
            if _TEMP_NAME.match(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def write_safetensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """``save_file`` through :func:`atomic_write`; an I/O failure (e.g. a full disk) is an ``OSError``."""

    def write(tmp: Path) -> None:
        try:
            save_file(dict(tensors), str(tmp), metadata=dict(metadata))
        except SafetensorError as exc:  # safetensors reports the OS error inside its own exception
            found = re.search(r"os error (\d+)", str(exc))
            if found is None:
                raise
            code = int(found.group(1))
            raise OSError(code, os.strerror(code), str(path)) from exc

    atomic_write(path, write)


def _plain_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared storage and non-contiguous views: store independent copies
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def save_weights(path: Path, model: nn.Module, metadata: Mapping[str, Any] | None = None) -> None:
    """Save ``model.state_dict()`` as safetensors; metadata values are stored as JSON strings."""
    tensors = _plain_tensors(model.state_dict())
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    write_safetensors(path, tensors, meta)


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata of a safetensors file written by :func:`save_weights`."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint not found: {path}") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from None
    out = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, with a clear error when it is missing or damaged."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint not found: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}") from None


#: what a mismatch usually means when the model comes from a recipe
RECIPE_HINT = "Is the architecture (or num_classes) in the recipe the one the checkpoint was trained with?"


def load_state_strict(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str,
                      hint: str = RECIPE_HINT) -> None:
    """``load_state_dict(strict=True)`` with a readable account of any mismatch, then ``hint``."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        def clip(items: list[str]) -> str:
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {clip(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {clip(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {clip(shapes)}")
        raise CheckpointError(f"{source} does not match the model {type(model).__name__}: {'; '.join(parts)}. {hint}")
    model.load_state_dict(state, strict=True)


def load_weights(path: Path, model: nn.Module) -> dict[str, Any]:
    """Load weights saved by :func:`save_weights` into ``model``; returns the metadata."""
    load_state_strict(model, read_tensors(path), source=str(path))
    return read_metadata(path)


# -- training state -----------------------------------------------------------------------

def _optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{pid}/{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_flat(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim/"):
            _, pid, key = name.split("/", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, entries in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(entries)
    groups = [
        {k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
        for g in meta["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def save_training_state(
    path: Path,
    optimizer: torch.optim.Optimizer,
    info: Mapping[str, Any],
    rng: Mapping[str, torch.Tensor],
    model: nn.Module | None = None,
    components: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
) -> None:
    """Save ``model``'s weights, optimizer state, RNG states and ``info`` (JSON) in one file, atomically.

    With ``model``, the file is a complete checkpoint (``info["format"] == 2``); without, it is
    the optimizer/RNG sidecar of older runs. ``components`` holds the state of components that
    keep one (:class:`advdistill.interfaces.CheckpointState`), by id (e.g. ``"callbacks.ema"``);
    :func:`read_component_states` reads it back.
    """
    tensors, optim_meta = _optimizer_to_flat(optimizer)
    tensors = {**tensors, **{f"rng/{k}": v for k, v in rng.items()}}
    for owner, state in (components or {}).items():
        tensors.update({f"{_COMPONENT_PREFIX}{owner}/{k}": v for k, v in state.items()})
    info = dict(info)
    if model is not None:
        tensors.update({_MODEL_PREFIX + k: v for k, v in model.state_dict().items()})
        info["format"] = STATE_FORMAT
    tensors = _plain_tensors(tensors)
    meta = {"info": json.dumps(info), "optimizer": json.dumps(optim_meta)}
    write_safetensors(path, tensors, meta)


def load_training_state(
    path: Path, optimizer: torch.optim.Optimizer, model: nn.Module | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore the optimizer (and ``model``, when the file holds weights) from ``path``.

    Returns ``(info, rng_states)``; ``info["has_weights"]`` says whether ``model`` was loaded
    (files of older runs hold no weights: load them from ``last.safetensors``).
    """
    tensors = read_tensors(path)
    with safe_open(str(path), framework="pt") as fh:
        raw = fh.metadata() or {}
    try:
        info = json.loads(raw["info"])
        optim_meta = json.loads(raw["optimizer"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not an advdistill training-state file ({exc})") from None
    device = next((p.device for g in optimizer.param_groups for p in g["params"]), torch.device("cpu"))
    flat = {k: v.to(device) if k.startswith("optim/") and v.dim() > 0 else v for k, v in tensors.items()}
    try:
        optimizer.load_state_dict(_optimizer_from_flat(flat, optim_meta))
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: the optimizer state does not fit this run's optimizer: {exc}") from None
    rng = {k.removeprefix("rng/"): v for k, v in tensors.items() if k.startswith("rng/")}
    weights = {k.removeprefix(_MODEL_PREFIX): v for k, v in tensors.items() if k.startswith(_MODEL_PREFIX)}
    info["has_weights"] = bool(weights) and model is not None
    if info["has_weights"]:
        load_state_strict(model, weights, source=f"{path} (weights)")
    return info, rng


def read_component_states(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The component states saved in a training-state file, by owner id (e.g. ``"callbacks.ema"``)."""
    path = Path(path)
    states: dict[str, dict[str, torch.Tensor]] = {}
    try:
        with safe_open(str(path), framework="pt") as fh:
            for name in fh.keys():  # noqa: SIM118 - safe_open has no __iter__
                if name.startswith(_COMPONENT_PREFIX):
                    owner, key = name.removeprefix(_COMPONENT_PREFIX).split("/", 1)
                    states.setdefault(owner, {})[key] = fh.get_tensor(name)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from None
    return states
