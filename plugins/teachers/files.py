"""Reading teacher weight files: safetensors natively, pickle (``.pt``) only when trusted, and never fully.

A pickle file can run arbitrary code while it is loaded; a safetensors file holds only
tensors. So ``.safetensors`` files are read without question, while ``.pt``/``.pth`` files are
read only when the caller says they are trusted — and even then only with
``torch.load(weights_only=True)``: tensors and plain containers, plus an allow-list of plain
data types that real checkpoints (RobustBench's model zoo, training scripts) carry next to
the weights — numpy scalars and arrays (a saved best accuracy), ``argparse.Namespace`` (the
training arguments). Nothing else is ever unpickled: a file that needs any other global (a
class of the code that saved it, or a payload such as ``posix.system``) is refused with that
global named, and nothing from it runs.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from advdistill.engine.checkpoint import read_tensors
from advdistill.errors import CheckpointError

# re-exported: the teacher loaders, `advdistill teacher convert` and the tests import them from here
from advdistill_plugins.teachers.layout import is_safetensors as is_safetensors
from advdistill_plugins.teachers.layout import sha256_file as sha256_file

log = logging.getLogger(__name__)

#: the wrappers RobustBench (and most training scripts) put around a state_dict
STATE_DICT_KEYS = ("state_dict", "model_state_dict")
#: prefixes left by DataParallel/DDP (``module.``) and by wrapper models (``model.``)
WRAPPER_PREFIXES = ("module.", "model.")
#: numpy dtypes whose values are plain numbers (no objects, strings or structured records)
_NUMPY_NUMBER_DTYPES = (
    "BoolDType", "Int8DType", "Int16DType", "Int32DType", "Int64DType", "IntDType", "LongDType", "LongLongDType",
    "ShortDType", "ByteDType", "UInt8DType", "UInt16DType", "UInt32DType", "UInt64DType", "UIntDType",
    "ULongDType", "ULongLongDType", "UShortDType", "UByteDType", "Float16DType", "Float32DType", "Float64DType",
    "LongDoubleDType", "Complex64DType", "Complex128DType", "CLongDoubleDType",
)


def plain_data_globals() -> list[Any]:
    """The globals a trusted ``.pt`` file may use beyond torch's tensors-only set: plain data only.

    Classes that rebuild numbers, numpy arrays of numbers and argument namespaces; each can
    only construct data (no function that runs a command, imports or evaluates code).
    Returns entries for ``torch.serialization.safe_globals``.
    """
    import argparse
    import types

    allowed: list[Any] = [argparse.Namespace, types.SimpleNamespace]
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with torch
        return allowed
    multiarray = (getattr(np, "_core", None) or np.core).multiarray
    # files written with numpy 1 name numpy.core.*, with numpy 2 numpy._core.*: accept both spellings
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(multiarray.scalar, f"{module}.scalar"), (multiarray._reconstruct, f"{module}._reconstruct")]
    allowed += [np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    allowed += [getattr(dtypes, name) for name in _NUMPY_NUMBER_DTYPES if hasattr(dtypes, name)]
    return allowed


def refused_global(error: BaseException) -> str:
    """The global (``module.name``) or type a weights-only load refused, from torch's message."""
    text = str(error)
    for pattern in (r"GLOBAL ([\w.]+)", r"but got <class '([^']+)'>", r"unrecognized function (.+?)(?: which|$)"):
        found = re.search(pattern, text, re.M)
        if found:
            name = found.group(1).strip()
            # torch writes builtins without their module ("exec"); say where it comes from
            return name if "." in name or " " in name else f"builtins.{name}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in lines if "WeightsUnpickler error" in line), lines[0] if lines else "")
    return detail.removeprefix("WeightsUnpickler error:").strip()[:200]


def _check_pickle_magic(path: Path) -> None:
    # torch.save writes a zip archive (PK..) or, in the legacy format, a raw pickle (protocol
    # byte 0x80); anything else is not a checkpoint and must never reach the unpickler
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (it starts with {head!r}; torch.save files start with a zip "
            "or pickle header). Is it truncated, or a different format?"
        )


def read_pickle_checkpoint(path: Path, *, convert_hint: str = "") -> Any:
    """``torch.load`` a trusted ``.pt`` file on CPU, tensors and plain data only (never full unpickling).

    :param convert_hint: a sentence telling how to get a loadable file (added to the refusal).
    :raises CheckpointError: the file is missing, damaged, or needs a global outside the allow-list
        (named in the message; nothing from the file ran).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint not found: {path}")
    _check_pickle_magic(path)
    try:
        with torch.serialization.safe_globals(plain_data_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        offending = refused_global(exc)
        raise CheckpointError(
            f"{path} was refused: it asks the unpickler for {offending!r}, which is not plain data. Only "
            "tensors, containers, numbers, numpy arrays of numbers and argparse.Namespace are read from a .pt "
            "file, even a trusted one, and nothing in it is run. If the file comes from code you trust, load it "
            "there and save the weights alone: torch.save(model.state_dict(), 'weights.pt'). "
            f"{convert_hint}".strip()
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {exc}"
        ) from None


def extract_state_dict(obj: Any, *, source: str) -> dict[str, Tensor]:
    """The ``name -> tensor`` mapping inside a loaded checkpoint (unwraps ``state_dict`` & co)."""
    if isinstance(obj, nn.Module):  # a whole pickled model
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{source} holds {type(obj).__name__}, not a state_dict (a name -> tensor mapping)"
        )
    bad = [f"{k} ({type(v).__name__})" for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        shown = ", ".join(bad[:6]) + (f" (+{len(bad) - 6} more)" if len(bad) > 6 else "")
        raise CheckpointError(
            f"{source} is not a plain state_dict: entries that are not tensors: {shown}. Expected a "
            f"name -> tensor mapping, possibly under one of the keys {', '.join(STATE_DICT_KEYS)}."
        )
    return {str(k): v for k, v in obj.items()}


def strip_prefixes(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Remove ``module.`` then ``model.`` when *every* key carries it (a real wrapper prefix).

    RobustBench removes the first ``len(prefix)`` characters of any key *containing* the
    substring, which mangles keys like ``submodule.x``; only true prefixes are removed here.
    """
    out = dict(state)
    for prefix in WRAPPER_PREFIXES:
        if out and all(k.startswith(prefix) for k in out):
            out = {k[len(prefix):]: v for k, v in out.items()}
    return out


def read_state_dict(
    path: Path, *, trust_pickle: bool, refusal: str = "", convert_hint: str = ""
) -> dict[str, Tensor]:
    """Read a weight file into a clean state_dict (unwrapped, prefixes stripped, on CPU).

    :param trust_pickle: allow ``.pt``-style pickle files (tensors and plain data only, see
        :func:`read_pickle_checkpoint`); without it they are refused unread.
    :param refusal: the message of the error raised for a pickle file that is not trusted.
    """
    path = Path(path)
    if is_safetensors(path):
        obj: Any = read_tensors(path)
    elif not trust_pickle:
        raise CheckpointError(refusal or f"{path} is a pickle file; it is read only when marked trusted")
    else:
        obj = read_pickle_checkpoint(path, convert_hint=convert_hint)
    return strip_prefixes(extract_state_dict(obj, source=str(path)))


def drop_redundant_buffers(model: nn.Module, state: dict[str, Tensor], *, source: str) -> dict[str, Tensor]:
    """Drop entries that are *non-persistent* buffers of ``model`` holding the same values.

    Older RobustBench versions saved DMWideResNet's ``mean``/``std`` with the weights; the
    model here keeps them out of its state_dict. A file whose values differ is an error: it
    was trained with another input normalization.
    """
    own = model.state_dict()
    out = dict(state)
    for key in [k for k in state if k not in own]:
        try:
            buffer = model.get_buffer(key)
        except AttributeError:
            continue
        if buffer is None:
            continue
        value = state[key].to(buffer.dtype)
        reference = buffer.detach().flatten().cpu()
        same = value.numel() == reference.numel() and torch.allclose(value.flatten(), reference, atol=1e-4)
        if not same:
            raise CheckpointError(
                f"{source} stores {key} = {_rounded(value)}, but the architecture normalizes with "
                f"{_rounded(reference)}: the weights were trained with another input normalization. "
                "Give the architecture that mean/std (model = {kind = ..., mean = [...], std = [...]})."
            )
        del out[key]
        log.debug("%s: ignored %s (same value as the architecture's non-persistent buffer)", source, key)
    return out


def _rounded(t: Tensor) -> list[float]:
    return [round(v, 4) for v in t.flatten().tolist()]
