"""Callbacks see a typed run state (not the trainer), in a fixed order of events."""

from __future__ import annotations

import advdistill as ad
from advdistill import hookimpl
from advdistill.interfaces import Callback, RunState

EVENTS: list[tuple[str, object]] = []


class Recorder(Callback):
    """Records every event and the state it was called with."""

    def on_train_start(self, run):
        EVENTS.append(("train_start", run))

    def on_epoch_start(self, run, epoch):
        EVENTS.append(("epoch_start", (run.epoch, epoch)))

    def on_step_end(self, run, step):
        EVENTS.append(("step", step.global_step))

    def on_epoch_end(self, run, record):
        EVENTS.append(("epoch_end", record["epoch"]))

    def on_train_end(self, run):
        EVENTS.append(("train_end", run.epoch))


class RecorderPlugin:
    @hookimpl
    def register_callbacks(self, register):
        register("recorder", Recorder, summary="records events (test)")


def test_callbacks_get_a_run_state_and_every_event(tiny_recipe, tmp_path, register_plugin):
    EVENTS.clear()
    register_plugin(RecorderPlugin(), name="recorder")
    recipe = tiny_recipe(
        train={"epochs": 2, "batch_size": 16, "log_every": 2, "device": "cpu", "max_steps_per_epoch": 2},
        callbacks={"progress": False, "recorder": {"kind": "recorder"}}, eval={"at_end": False},
    )
    run_dir = ad.train(recipe, tmp_path / "run")
    kind, state = EVENTS[0]
    assert kind == "train_start" and isinstance(state, RunState)
    assert state.out_dir == run_dir and state.epochs == 2 and state.steps_per_epoch == 2 and state.is_main
    assert state.recipe.name == "tiny" and state.teacher is None
    assert state.data.train_x.shape[0] == 64 and state.student is not None
    assert EVENTS[1:] == [
        ("epoch_start", (1, 1)), ("step", 0), ("step", 1), ("epoch_end", 1),
        ("epoch_start", (2, 2)), ("step", 2), ("step", 3), ("epoch_end", 2), ("train_end", 2),
    ]
