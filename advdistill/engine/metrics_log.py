"""``metrics.jsonl``: one JSON object per line, appended as training goes.

A process killed while appending leaves a torn last line; every reader goes through
:func:`read_records`, which drops such a line with a warning. Damage anywhere else is not
the trace of an interrupted write and is an error naming the line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from advdistill.errors import RunDirectoryError
from advdistill.io import atomic_write_text

log = logging.getLogger(__name__)

FILE_NAME = "metrics.jsonl"


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (an empty list when it does not exist).

    A damaged last line (a write cut short) is dropped with a warning.
    :raises RunDirectoryError: a line other than the last is not a JSON object.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RunDirectoryError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    records = []
    for position, (number, raw) in enumerate(numbered):
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if position == len(numbered) - 1:
                log.warning(
                    "%s: ignored the damaged last line %d (a write interrupted by a kill?): %s",
                    path, number, _clip(raw),
                )
                break
            raise RunDirectoryError(
                f"{path} is damaged at line {number} ({exc}); only the last line can be cut short by an "
                f"interrupted write. Delete or repair that line (it reads {_clip(raw)})."
            ) from None
        records.append(record)
    return records


def _clip(raw: bytes, n: int = 80) -> str:
    text = raw.decode("utf-8", errors="replace")
    return repr(text if len(text) <= n else text[:n] + "…")


def append_record(path: Path, record: Mapping[str, Any]) -> None:
    """Append one record as a line (the file is created if needed)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(dict(record)) + "\n")


def keep_records(path: Path, keep: Callable[[dict[str, Any]], bool]) -> int:
    """Rewrite ``path`` atomically with only the records ``keep`` accepts; returns how many were dropped.

    The rewrite also removes a torn last line, so appends start on a fresh line.
    """
    path = Path(path)
    if not path.exists():
        return 0
    records = read_records(path)
    kept = [r for r in records if keep(r)]
    raw = path.read_bytes()
    if len(kept) != len(records) or (raw and not raw.endswith(b"\n")) or _has_torn_line(raw, len(records)):
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
    return len(records) - len(kept)


def _has_torn_line(raw: bytes, n_records: int) -> bool:
    return sum(1 for line in raw.split(b"\n") if line.strip()) != n_records
