"""Writing files so that a reader never sees half of one: a temporary file, then a rename.

The file gets the permissions a plain ``open(path, "w")`` would give it: those of the file it
replaces, or 0666 minus the umask for a new one (``tempfile.mkstemp`` would make it 0600, so
colleagues sharing a results directory could not read it).
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from advdistill._testhooks import pause_point


def _create_temp(path: Path) -> Path:
    """A new, empty ``.<name>.<random>.tmp`` beside ``path``, created with mode 0666 (the kernel applies the umask)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 2**-32 per attempt
            continue
        os.close(fd)
        return tmp


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary file in the same directory, then rename it over.

    ``write(tmp)`` fills the temporary file. The result has the mode of the file it replaces,
    or 0666 minus the umask when ``path`` is new, as with a plain ``open(path, "w")``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(path)
    try:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = stat.S_IMODE(os.stat(tmp).st_mode)  # created as 0666: the kernel applied the umask
        write(tmp)
        # after writing: some writers (safetensors' save_file) replace the file with one of mode 0600
        os.chmod(tmp, mode)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        pause_point(f"atomic-write:{path.name}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
