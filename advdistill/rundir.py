"""Run directories: checked before anything is built, locked while a command writes into them.

``train`` and ``eval`` (and any command that writes into a run directory) hold an exclusive
lock on it for as long as they write::

    from advdistill.rundir import run_dir_lock

    with run_dir_lock(out_dir, "study"):
        ...  # only this process writes into out_dir

The lock is ``<dir>/advdistill.lock``, locked with ``flock`` (released by the kernel when the
process ends, however it ends) and holding the owner's pid, host, command and start time as
JSON. A second process is refused with a message naming the owner; a lock file left by a
process that died is taken over with a warning. Locks are re-entrant within one process (the
end-of-training evaluation writes into the run directory that training holds).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from advdistill.errors import RunDirectoryError

log = logging.getLogger(__name__)

LOCK_NAME = "advdistill.lock"

#: directories this process holds, with their lock file handle and depth of nesting
_held: dict[Path, list[Any]] = {}


def ensure_writable_dir(path: Path, what: str = "--out") -> Path:
    """Create ``path`` (and parents) or refuse with a clear error; returns it resolved.

    Meant to run before any data or model is built, so a wrong ``--out`` costs nothing.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunDirectoryError(f"{what} {path} exists and is not a directory") from None
    except OSError as exc:
        raise RunDirectoryError(
            f"{what} {path} cannot be created: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else "")
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunDirectoryError(f"{what} {path} is not writable by this user")
    return path.resolve()


def _owner_text(owner: dict[str, Any]) -> str:
    parts = [f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')}"]
    if owner.get("command"):
        parts.append(f"running `advdistill {owner['command']}`")
    if owner.get("started"):
        parts.append(f"since {owner['started']}")
    return ", ".join(parts)


def read_lock_owner(directory: Path) -> dict[str, Any] | None:
    """The owner recorded in ``directory``'s lock file, or None (no file, or unreadable)."""
    try:
        text = (Path(directory) / LOCK_NAME).read_text(encoding="utf-8")
        owner = json.loads(text)
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def _process_alive(pid: Any) -> bool | None:
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _acquire(directory: Path, command: str) -> Any:
    path = directory / LOCK_NAME
    while True:
        try:
            fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open while the lock is held
        except OSError as exc:
            raise RunDirectoryError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.close()
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunDirectoryError(f"cannot lock {path}: {exc.strerror or exc}") from None
            owner = read_lock_owner(directory) or {}
            raise RunDirectoryError(
                f"{directory} is in use by another advdistill process ({_owner_text(owner)}). "
                "Wait for it to finish or stop it, or write into another directory (--out). "
                f"The lock is {path}; it is released when that process ends."
            ) from None
        # the previous holder may have deleted the file between our open and our lock: retry
        try:
            same = os.path.samestat(os.fstat(fh.fileno()), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fh
        fh.close()


def _write_owner(fh: Any, directory: Path, command: str) -> None:
    previous = read_lock_owner(directory)
    if previous and previous.get("pid") != os.getpid():
        alive = previous.get("host") == socket.gethostname() and _process_alive(previous.get("pid"))
        state = "still running but no longer holding the lock" if alive else "no longer running"
        log.warning(
            "took over the lock of %s left by %s (%s)", directory, _owner_text(previous), state
        )
    owner = {
        "pid": os.getpid(), "host": socket.gethostname(), "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps(owner) + "\n")
    fh.flush()


def acquire_run_dir_lock(directory: Path, command: str) -> Path:
    """Lock ``directory`` (created if needed) for this process; see :func:`run_dir_lock`."""
    directory = ensure_writable_dir(directory, "run directory")
    entry = _held.get(directory)
    if entry is not None:
        entry[1] += 1
        return directory
    fh = _acquire(directory, command)
    _write_owner(fh, directory, command)
    _held[directory] = [fh, 1]
    return directory


def release_run_dir_lock(directory: Path) -> None:
    """Undo one :func:`acquire_run_dir_lock`; the last one removes the lock file and unlocks."""
    directory = Path(directory).resolve()
    entry = _held.get(directory)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] > 0:
        return
    del _held[directory]
    fh = entry[0]
    # delete while still locked: a waiting process then sees a new file, never a stale owner
    with contextlib.suppress(OSError):
        (directory / LOCK_NAME).unlink()
    fh.close()


@contextlib.contextmanager
def run_dir_lock(directory: str | Path, command: str) -> Iterator[Path]:
    """Hold the exclusive lock of a run directory for a block; yields the resolved directory.

    :param command: what the lock holder does (shown to a refused second process), e.g. "train".
    :raises RunDirectoryError: another process holds the lock, or the directory is not writable.
    """
    resolved = acquire_run_dir_lock(Path(directory), command)
    try:
        yield resolved
    finally:
        release_run_dir_lock(resolved)
