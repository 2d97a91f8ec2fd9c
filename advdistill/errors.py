"""The errors advdistill raises to users.

Every error meant for a person derives from :class:`AdvDistillError`; the CLI prints its
message (no traceback) and exits with status 2. Anything else escaping is a bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AdvDistillError(Exception):
    """Base class of every user-facing error."""


class RecipeError(AdvDistillError):
    """A recipe file or override is malformed or asks for something invalid."""


class PluginError(AdvDistillError):
    """A plugin could not be loaded, registered or built."""


class UnknownComponentError(PluginError, KeyError):
    """A recipe or API call named a component that no plugin registered."""

    def __str__(self) -> str:  # KeyError.__str__ would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class CheckpointError(AdvDistillError):
    """A checkpoint or teacher file is missing, corrupt or does not match the model."""


class DataError(AdvDistillError):
    """A data set is missing or malformed."""


class TrainingError(AdvDistillError):
    """Training could not continue (e.g. the loss diverged)."""


class DistributedError(AdvDistillError):
    """The processes of a ``torchrun`` job could not work together (one waited too long for the others)."""


class RunDirectoryError(AdvDistillError):
    """A run or output directory cannot be used: not writable, in use by another process, damaged."""


class StudyError(AdvDistillError):
    """A study file is malformed, or a study cannot run as asked."""


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` names from ``candidates`` that look like ``name``."""
    candidates = list(candidates)
    found = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    if not found:  # prefix matches catch abbreviations that difflib scores low
        found = [c for c in candidates if c.startswith(name) or name.startswith(c)][:n]
    return found


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A sentence suggesting the closest valid names, or an empty string."""
    close = closest(name, candidates)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
