"""Test-only pause points: let a test kill a process at an exact moment (e.g. between two writes).

With ``ADVDISTILL_TEST_PAUSE_AT=<point>`` in its environment, a process that reaches that named
point prints ``advdistill: paused at <point> (pid N)`` to stderr and sleeps until it is killed.
The variable is read once at import; unset (always, outside tests) a point costs one comparison.
Points: ``step:<global step>`` (after that optimizer step), ``epoch-end:before-save:<epoch>``
(the epoch record is in metrics.jsonl, no checkpoint written yet), ``atomic-write:<file name>``
(the temporary file is complete, not yet renamed), ``save:after-state:<epoch>`` (the checkpoint
file is in place, the weight exports are not), ``save:after-last:<epoch>`` (``best`` not yet
exported), ``train:started`` (the run directory is locked, nothing built yet).
"""

from __future__ import annotations

import os
import sys
import time

PAUSE_ENV = "ADVDISTILL_TEST_PAUSE_AT"
PAUSE_AT = os.environ.get(PAUSE_ENV) or None


def pause_point(name: str) -> None:
    """Sleep forever here when ``ADVDISTILL_TEST_PAUSE_AT`` names this point (tests only)."""
    if PAUSE_AT is None or name != PAUSE_AT:
        return
    sys.stderr.write(f"advdistill: paused at {name} (pid {os.getpid()})\n")
    sys.stderr.flush()
    while True:
        time.sleep(60)
