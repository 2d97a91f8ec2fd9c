"""The tensorboard callback, read back with TensorBoard's own event reader."""

from __future__ import annotations

import json

import pytest

from advdistill.errors import PluginError

pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'advdistill[tensorboard]'); "
                                          "CI installs it and test_trackers_are_installed_in_ci requires it there")

from tracker_events import EPOCHS, STEPS, drive

from advdistill_plugins.callbacks.tensorboard_logger import TensorBoardConfig, TensorBoardLogger


def read_events(log_dir):
    """{tag: [(step, value), ...]} and the text summaries, through TensorBoard's EventAccumulator."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(log_dir), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    texts = {tag: [t.tensor_proto.string_val[0].decode() for t in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}
    return scalars, texts


def test_every_number_and_the_recipe_are_in_the_event_files(tracked_run_state):
    run = tracked_run_state
    expected = drive(TensorBoardLogger(TensorBoardConfig()), run)
    scalars, texts = read_events(run.out_dir / "tensorboard")
    got = {(tag, step): value for tag, points in scalars.items() for step, value in points}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key  # event files hold float32
    recipe = json.loads("\n".join(line[4:] for line in texts["recipe/text_summary"][0].splitlines()))
    assert recipe["recipe_hash"] == run.recipe.hash and recipe["train"] == run.recipe.to_dict()["train"]
    assert json.loads((run.out_dir / "tracking.json").read_text())["tensorboard"]["log_dir"].endswith("tensorboard")


def test_a_resume_continues_the_event_files_and_drops_what_the_interrupted_attempt_logged(tracked_run_state):
    """The first attempt logs epochs 1 and 2 and is killed; the resume from the checkpoint of epoch 1
    logs epoch 2 again: TensorBoard keeps epoch 1's points and the resumed epoch 2 only."""
    run = tracked_run_state
    drive(TensorBoardLogger(TensorBoardConfig()), run)  # as if killed after epoch 2's records
    run.epoch, run.report = 1, None  # the checkpoint holds epoch 1
    resumed = TensorBoardLogger(TensorBoardConfig())
    resumed.on_train_start(run)
    run.epoch = 2
    resumed.on_epoch_end(run, {"event": "epoch", "epoch": 2, "train_loss": 9.0, "lr": 0.1, "seconds": 1.0})
    resumed.on_train_end(run)
    scalars, texts = read_events(run.out_dir / "tensorboard")
    assert scalars["epoch/train_loss"] == [(STEPS, 0.5), (2 * STEPS, 9.0)]
    assert [step for step, _ in scalars["loss"]] == [STEPS]  # epoch 2's log step of the first attempt is gone
    assert "recipe (resumed after epoch 1)/text_summary" in texts
    assert EPOCHS == 2


def test_without_tensorboard_the_error_names_the_extra(tracked_run_state, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what a missing package looks like
    with pytest.raises(PluginError, match=r"pip install 'advdistill\[tensorboard\]'"):
        TensorBoardLogger(TensorBoardConfig()).on_train_start(tracked_run_state)


def test_only_the_main_process_logs(tracked_run_state):
    run = tracked_run_state
    run.is_main = False
    drive(TensorBoardLogger(TensorBoardConfig()), run)
    assert not (run.out_dir / "tensorboard").exists() and not (run.out_dir / "tracking.json").exists()
