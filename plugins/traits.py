"""Our plugins declare their components' traits (``requires_teacher``, ...) when they register them."""

from __future__ import annotations

import functools
from typing import Any


def declaring_traits(register: Any) -> Any:
    """``register`` with ``traits={}`` unless a call gives its own: every component of our plugins
    declares its traits (all defaults unless given), so that resolving a recipe reads them from
    the registration instead of importing the component (and torch). A test checks each against
    the component's class attributes."""
    return functools.partial(register, traits={})
