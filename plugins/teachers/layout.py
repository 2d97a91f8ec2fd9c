"""Where a RobustBench teacher's files are and what they are: no torch, so that `advdistill teacher
list` and `recipe check` can look for the files without importing it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def layout_dir(model_dir: str | Path, dataset: str, threat_model: str) -> Path:
    """``{model_dir}/{dataset}/{threat_model}`` with ``~`` and environment variables expanded."""
    return Path(os.path.expandvars(os.path.expanduser(str(model_dir)))) / dataset / threat_model


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_safetensors(path: Path) -> bool:
    return Path(path).suffix == ".safetensors"
