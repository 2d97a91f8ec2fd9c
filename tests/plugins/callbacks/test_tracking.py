"""What the trackers share: the names of the numbers, tracking.json, the missing-extra errors, and
(where CI asks for it) that the tracker packages are installed, so that no tracker test is skipped there."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os

import pytest
import torch

import advdistill as ad
from advdistill.interfaces import StepInfo
from advdistill_plugins.callbacks.tracking import (
    epoch_scalars,
    read_tracking,
    recipe_params,
    report_scalars,
    step_scalars,
    write_tracking,
)

TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


@pytest.mark.skipif(os.environ.get("ADVDISTILL_REQUIRE_EXTRAS") != "1",
                    reason="ADVDISTILL_REQUIRE_EXTRAS=1 (set by make test and .ci/run) requires the tracker packages")
def test_trackers_are_installed_in_ci():
    """In CI, the tracker tests must run: their packages come with the test extra."""
    for module in TRACKERS.values():
        importlib.import_module(module)


def test_step_scalars_only_on_log_steps():
    loss = torch.tensor(0.5)
    quiet = StepInfo(1, 0, 3, 0, loss, 0.1, {"igdm": loss})
    assert step_scalars(quiet) == {}  # reading the device tensors here would synchronise
    logged = StepInfo(1, 1, 3, 1, loss, 0.1, {"igdm": loss / 2}, loss_value=0.5, images_per_s=80.0)
    assert step_scalars(logged) == {"loss": 0.5, "lr": 0.1, "images_per_s": 80.0, "loss/igdm": 0.25}


def test_epoch_and_report_names():
    record = {"event": "epoch", "epoch": 3, "train_loss": 0.5, "lr": 0.1, "seconds": 2.0, "best": True,
              "eval": {"clean": 60.0, "pgd": 30.0, "ema/pgd": 31.0}, "linearity": 0.2, "note": "text"}
    assert epoch_scalars(record) == {"eval/clean": 60.0, "eval/pgd": 30.0, "eval/ema/pgd": 31.0,
                                     "epoch/train_loss": 0.5, "epoch/lr": 0.1, "epoch/seconds": 2.0,
                                     "epoch/linearity": 0.2}
    report = {"checkpoints": {"last": {"metrics": {"pgd20": 40.0, "eps_curve": [{"eps": 0.1}], "gd": None}},
                              "ema": {"metrics": {"pgd20": 41.0}}}}
    assert report_scalars(report) == {"test/last/pgd20": 40.0, "test/ema/pgd20": 41.0}


def test_recipe_params_are_the_flat_resolved_recipe(tiny_recipe):
    recipe = ad.load_recipe(tiny_recipe())
    params = recipe_params(recipe)
    assert params["train.epochs"] == "1" and params["attack.eps"] == json.dumps(8 / 255)
    assert params["student.widths"] == "[4]" and params["recipe_hash"] == recipe.hash
    assert all(isinstance(v, str) for v in params.values())


def test_tracking_json_keeps_each_trackers_entry(tmp_path):
    assert read_tracking(tmp_path) == {}
    write_tracking(tmp_path, "mlflow", {"run_id": "a"})
    write_tracking(tmp_path, "wandb", {"id": "b"})
    write_tracking(tmp_path, "mlflow", {"run_id": "c"})
    assert read_tracking(tmp_path) == {"mlflow": {"run_id": "c"}, "wandb": {"id": "b"}}


@pytest.mark.parametrize("tracker", sorted(TRACKERS))
def test_a_missing_tracker_package_is_named_at_recipe_check(tracker, tiny_recipe, cli_runner, monkeypatch):
    """`recipe check` (and `train`) say which extra to install; no ImportError, nothing imported."""
    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == TRACKERS[tracker] else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)  # the package is not installed
    recipe = tiny_recipe(callbacks={"progress": False, "track": {"kind": tracker}})
    result = cli_runner("recipe", "check", str(recipe), exit_code=2)
    assert f"pip install 'advdistill[{tracker}]'" in result.output and "[callbacks.track]" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(ad.RecipeError, match=rf"advdistill\[{tracker}\]"):
        ad.train(recipe, recipe.parent / "run")
    assert not (recipe.parent / "run").exists()
    ad.load_recipe(recipe)  # loading it (e.g. to evaluate a finished run) needs no tracker


@pytest.mark.slow
def test_a_killed_run_resumes_into_the_same_tracked_runs(tiny_recipe, tmp_path, paused_cli, monkeypatch):
    """`advdistill train` with all three trackers, killed (SIGKILL) in epoch 2, then --resume: one MLflow
    run (finished), one W&B run id, TensorBoard without the killed attempt's points; the numbers are
    those of metrics.jsonl."""
    for module in TRACKERS.values():
        pytest.importorskip(module, reason=f"{module} is not installed; CI requires it "
                                           "(test_trackers_are_installed_in_ci)")
    from mlflow.tracking import MlflowClient
    from test_tensorboard_logger import read_events
    from test_wandb_logger import read_offline_run

    monkeypatch.chdir(tmp_path)
    database = f"sqlite:///{tmp_path / 'mlflow.db'}"
    recipe = tiny_recipe(
        data={"kind": "synthetic", "n_train": 64, "n_test": 32, "num_classes": 4, "image_size": 8, "in_chans": 1,
              "val_size": 16},
        train={"epochs": 2, "batch_size": 16, "log_every": 1, "device": "cpu"},
        callbacks={"progress": False, "periodic_eval": {"kind": "periodic_eval", "limit": 16, "steps": 1},
                   "ema": {"kind": "ema"}, "tb": {"kind": "tensorboard"},
                   "ml": {"kind": "mlflow", "tracking_uri": database, "artifact_location": str(tmp_path / "art")},
                   "wb": {"kind": "wandb", "mode": "offline"}},
    )
    run = tmp_path / "run"
    paused_cli(["train", recipe, "--out", run], "step:4").kill()  # 3 steps per epoch: in epoch 2
    first = read_tracking(run)
    ad.train(recipe, run, resume=True)
    assert read_tracking(run)["mlflow"]["run_id"] == first["mlflow"]["run_id"]
    assert read_tracking(run)["wandb"]["id"] == first["wandb"]["id"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = {r["epoch"] * 3: r for r in records if r["event"] == "epoch"}
    steps = {r["step"] + 1: r for r in records if r["event"] == "step"}

    client = MlflowClient(database)
    (found,) = client.search_runs([client.get_experiment_by_name("advdistill").experiment_id])
    assert found.info.run_id == first["mlflow"]["run_id"] and found.info.status == "FINISHED"
    history = client.get_metric_history(found.info.run_id, "epoch/train_loss")
    assert {m.step: m.value for m in history} == pytest.approx({x: r["train_loss"] for x, r in epochs.items()})
    assert {m.step for m in client.get_metric_history(found.info.run_id, "eval/ema/pgd")} == {3, 6}
    assert "test/ema/pgd2" in found.data.metrics
    assert [a.path for a in client.list_artifacts(found.info.run_id, "checkpoints")] == ["checkpoints/best.safetensors"]

    scalars, _ = read_events(run / "tensorboard")
    for tag, expected in (("epoch/train_loss", {x: r["train_loss"] for x, r in epochs.items()}),
                          ("loss", {x: r["loss"] for x, r in steps.items()})):
        assert [x for x, _ in scalars[tag]] == sorted(expected)  # each x once: the killed attempt's are gone
        assert dict(scalars[tag]) == pytest.approx(expected)

    folders = sorted((run / "wandb").glob("offline-run-*"))
    assert len(folders) == 2
    resumed = read_offline_run(folders[-1])
    assert next(r["run"] for r in resumed if r["type"] == "run")["run_id"] == first["wandb"]["id"]
    logged = {r["history"]["step"]["num"]: r["history"]["item"] for r in resumed if r["type"] == "history"}
    assert logged[6]["epoch/train_loss"] == pytest.approx(epochs[6]["train_loss"])
