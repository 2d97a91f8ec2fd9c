"""The mlflow callback on a local SQLite store (no server), read back with MlflowClient."""

from __future__ import annotations

import json
import sys

import pytest

from advdistill.errors import PluginError

pytest.importorskip("mlflow", reason="mlflow is not installed (pip install 'advdistill[mlflow]'); "
                                     "CI installs it and test_trackers_are_installed_in_ci requires it there")

from tracker_events import drive

from advdistill_plugins.callbacks.mlflow_logger import MLflowConfig, MLflowLogger
from advdistill_plugins.callbacks.tracking import recipe_params


@pytest.fixture
def store(mlflow_database, tmp_path, request):
    """The tracking URI, an experiment of this test's own, and its artifact folder in tmp_path
    (MLflow's default would be the working directory)."""
    return {"tracking_uri": mlflow_database, "experiment": request.node.name[:200],
            "artifact_location": str(tmp_path / "artifacts")}


def client_for(store):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store["tracking_uri"])


def test_params_metrics_and_artifacts(tracked_run_state, store):
    run = tracked_run_state
    for name in ("report.json", "report.md", "recipe.json", "metrics.jsonl"):
        (run.out_dir / name).write_text("{}\n")
    (run.out_dir / "checkpoints").mkdir()
    for name in ("last", "best", "ema", "last.state"):
        (run.out_dir / "checkpoints" / f"{name}.safetensors").write_bytes(b"weights")
    expected = drive(MLflowLogger(MLflowConfig(**store)), run)

    client = client_for(store)
    experiment = client.get_experiment_by_name(store["experiment"])
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == run.recipe.name
    assert json.loads((run.out_dir / "tracking.json").read_text())["mlflow"]["run_id"] == found.info.run_id
    assert found.data.params == recipe_params(run.recipe)  # the flattened recipe, e.g. "train.epochs": "1"
    assert found.data.params["train.batch_size"] == "16" and found.data.params["attack.kind"] == "pgd"
    assert found.data.tags["advdistill.recipe_hash"] == run.recipe.hash
    history = {}
    for key in {name for name, _ in expected}:
        history.update({(key, m.step): m.value for m in client.get_metric_history(found.info.run_id, key)})
    assert history == pytest.approx(expected)
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"report.json", "report.md", "recipe.json", "metrics.jsonl", "checkpoints"} <= artifacts
    assert [a.path for a in client.list_artifacts(found.info.run_id, "checkpoints")] == ["checkpoints/best.safetensors"]
    assert store["artifact_location"] in found.info.artifact_uri


def test_a_resume_continues_the_same_mlflow_run(tracked_run_state, store):
    run = tracked_run_state
    first = MLflowLogger(MLflowConfig(**store))
    first.on_train_start(run)  # then the process is killed: the MLflow run stays RUNNING
    run_id = first.run_id
    assert client_for(store).get_run(run_id).info.status == "RUNNING"
    run.epoch = 1  # the checkpoint of epoch 1
    second = MLflowLogger(MLflowConfig(**store))
    second.on_train_start(run)
    assert second.run_id == run_id
    second.on_epoch_end(run, {"event": "epoch", "epoch": 2, "train_loss": 0.25, "lr": 0.1, "seconds": 1.0})
    second.on_train_end(run)
    found = client_for(store).get_run(run_id)
    assert found.info.status == "FINISHED" and found.data.metrics["epoch/train_loss"] == 0.25
    assert len(client_for(store).search_runs([found.info.experiment_id])) == 1


def test_a_resume_with_a_changed_recipe_keeps_the_params_and_tags_the_change(tracked_run_state, store, tiny_recipe):
    import advdistill as ad

    run = tracked_run_state
    first = MLflowLogger(MLflowConfig(**store))
    first.on_train_start(run)
    run.epoch = 1
    run.recipe = ad.load_recipe(tiny_recipe("changed.toml", optim={"kind": "sgd", "lr": 0.01}))
    second = MLflowLogger(MLflowConfig(**store))
    second.on_train_start(run)
    found = client_for(store).get_run(first.run_id)
    assert found.data.params["optim.lr"] == "0.05"
    assert found.data.tags["changed_on_resume.optim.lr"] == "0.01"


def test_without_mlflow_the_error_names_the_extra(tracked_run_state, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what a missing package looks like
    with pytest.raises(PluginError, match=r"pip install 'advdistill\[mlflow\]'"):
        MLflowLogger(MLflowConfig()).on_train_start(tracked_run_state)
