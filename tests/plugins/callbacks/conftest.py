"""Fixtures of the callback tests: a run state for the trackers."""

from __future__ import annotations

import pytest
from tracker_events import AUDIT, EPOCHS, STEPS

from advdistill.testing import make_run_state


@pytest.fixture
def tracked_run_state(tiny_recipe, tmp_path):
    """A RunState of a tiny recipe (STEPS steps per epoch) with a teacher audit, in tmp_path/run."""
    run = make_run_state(tiny_recipe(), tmp_path / "run", epochs=EPOCHS)
    run.out_dir.mkdir()
    run.steps_per_epoch = STEPS
    run.teacher_audit = dict(AUDIT)
    return run


@pytest.fixture(scope="session")
def mlflow_database(tmp_path_factory):
    """One SQLite MLflow store for the session: creating one runs MLflow's schema migrations (seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
