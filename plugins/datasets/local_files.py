"""What the data sets read from local disk share: the ``root`` convention and the missing-file error."""

from __future__ import annotations

import os
from pathlib import Path

from advdistill.errors import DataError


def expand_root(root: str) -> Path:
    """``root`` with ``~`` and environment variables expanded; a relative path stays relative to the cwd."""
    return Path(os.path.expandvars(os.path.expanduser(root)))


def missing_file(name: str, path: Path, source: str, remedy: str) -> DataError:
    """The error for a file of data set ``name`` that is not where it should be.

    :param source: what the file is and where it comes from (a URL).
    :param remedy: what the user does about it, e.g. where to extract the archive.
    """
    return DataError(f"{name}: expected {path} ({source}). Nothing is downloaded at run time: {remedy}.")
