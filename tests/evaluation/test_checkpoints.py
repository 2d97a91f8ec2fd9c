"""Which checkpoints an evaluation covers, the reported one and its rule, in report.json/report.md."""

import json

import pytest
import torch

import advdistill as ad
from advdistill.engine.checkpoint import read_metadata, save_weights
from advdistill.errors import CheckpointError
from advdistill.evaluation.checkpoints import run_checkpoints, selected_by
from advdistill.evaluation.records import read_per_example
from advdistill.testing import TINY_RECIPE, to_toml


def fake_run(tmp_path, names=("last", "best")):
    for name in names:
        meta = {"epoch": 3 if name == "last" else 2, "checkpoint_id": name}
        if name == "best":
            meta.update(best_metric="pgd", best=40.0, split="val")
        save_weights(tmp_path / "checkpoints" / f"{name}.safetensors", torch.nn.Linear(2, 2), meta)
    return tmp_path


def names(choices):
    return [(c.name, c.rule) for c in choices]


def test_both_are_evaluated_and_eval_checkpoint_picks_the_reported_one(tmp_path):
    run = fake_run(tmp_path)
    choices, reported, note = run_checkpoints(run, None, "last")
    assert names(choices) == [("last", "last"), ("best", "best")] and reported == "last" and note is None
    assert run_checkpoints(run, None, "best")[1] == "best"


def test_one_checkpoint_on_request_and_the_fallback_from_best(tmp_path):
    run = fake_run(tmp_path)
    assert names(run_checkpoints(run, "best", "last")[0]) == [("best", "best")]
    assert names(run_checkpoints(run, "last", "best")[0]) == [("last", "last")]
    only_last = fake_run(tmp_path / "only_last", names=("last",))
    choices, reported, note = run_checkpoints(only_last, None, "best")
    assert names(choices) == [("last", "last")] and reported == "last"
    assert "no checkpoints/best.safetensors" in note
    choices, reported, note = run_checkpoints(only_last, "best", "last")
    assert names(choices) == [("last", "last")] and "'best' was asked for" in note


def test_a_path_is_an_explicit_checkpoint_and_nothing_is_an_error(tmp_path):
    run = fake_run(tmp_path)
    choices, reported, _ = run_checkpoints(run, str(run / "checkpoints" / "best.safetensors"), "last")
    assert names(choices) == [("best", "explicit")] and reported == "best"
    with pytest.raises(CheckpointError, match="Checkpoint not found"):
        run_checkpoints(run, str(tmp_path / "nope.safetensors"), "last")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"holds no last\.safetensors or best\.safetensors"):
        run_checkpoints(tmp_path / "empty", None, "last")


def test_selected_by_reads_the_metadata_and_flags_legacy_runs():
    assert selected_by({"epoch": 4}) is None
    assert selected_by({"epoch": 4, "best_metric": "pgd", "best": 51.0, "split": "val"}) == {
        "metric": "pgd", "split": "val", "epoch": 4, "value": 51.0}
    assert selected_by({"epoch": 2, "best_metric": "pgd", "best": 37.5}) == {
        "metric": "pgd", "split": "test", "epoch": 2, "value": 37.5, "legacy": True}


def recipe_file(root, name, epochs, **extra):
    data = {**TINY_RECIPE, "name": name, "data": {**TINY_RECIPE["data"], "val_size": 16},
            "train": {"epochs": epochs, "batch_size": 16, "log_every": 2, "device": "cpu"},
            "callbacks": {"progress": False, "periodic_eval": {"kind": "periodic_eval", "steps": 1}}, **extra}
    path = root / f"{name}.toml"
    path.write_text(to_toml(data))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Trained for 4 epochs with the periodic evaluation on 16 validation images; best ≠ last."""
    root = tmp_path_factory.mktemp("run")
    for lr in (0.05, 0.2, 0.02):  # a learning rate whose best epoch is not the last one
        out = ad.train(recipe_file(root, f"r{lr}", 4, optim={"kind": "sgd", "lr": lr}), root / f"r{lr}")
        if read_metadata(out / "checkpoints" / "best.safetensors")["epoch"] != 4:
            return out
    pytest.fail("every learning rate tried had its best validation epoch last")


def test_training_ends_with_both_checkpoints_evaluated(run):
    report = json.loads((run / "report.json").read_text())
    best_meta = read_metadata(run / "checkpoints" / "best.safetensors")
    assert report["checkpoint"] == {"name": "last", "path": str(run / "checkpoints" / "last.safetensors"),
                                    "epoch": 4, "rule": "last", "selected_by": None}
    assert list(report["checkpoints"]) == ["last", "best"]
    best = report["checkpoints"]["best"]
    assert best["epoch"] == best_meta["epoch"] and best["rule"] == "best"
    assert best["selected_by"] == {"metric": "pgd", "split": "val", "epoch": best_meta["epoch"],
                                   "value": best_meta["best"]}
    assert report["metrics"] == report["checkpoints"]["last"]["metrics"] and report["epoch"] == 4
    records = read_per_example(run)
    for name in ("last", "best"):
        assert set(records[name]) == {"clean", "pgd2"}
        for key, flags in records[name].items():
            assert 100.0 * flags.float().mean().item() == pytest.approx(report["checkpoints"][name]["metrics"][key])
    text = (run / "report.md").read_text()
    assert "reported checkpoint: `last` (epoch 4), rule `last`: the weights after the final epoch" in text
    assert f"`best` (epoch {best_meta['epoch']}), selected by the highest periodic pgd" in text
    assert "on the validation split" in text
    assert "| **last** (epoch 4; reported) |" in text and f"| best (epoch {best_meta['epoch']}; val pgd" in text


def test_eval_checkpoint_best_reports_best(cli_runner, run, tmp_path):
    out = tmp_path / "eval"
    cli_runner("eval", str(run), "--out", str(out), "--set", "eval.checkpoint=best")
    report = json.loads((out / "report.json").read_text())
    assert report["checkpoint"]["name"] == "best" and report["checkpoint"]["rule"] == "best"
    assert report["checkpoint"]["selected_by"]["split"] == "val"
    assert report["metrics"] == report["checkpoints"]["best"]["metrics"]
    assert list(report["checkpoints"]) == ["last", "best"]
    assert "reported checkpoint: `best`" in (out / "report.md").read_text()


def test_one_checkpoint_on_the_command_line(cli_runner, run, tmp_path):
    cli_runner("eval", str(run), "--out", str(tmp_path / "a"), "--checkpoint", "last")
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert list(report["checkpoints"]) == ["last"] and report["checkpoint"]["rule"] == "last"
    path = str(run / "checkpoints" / "best.safetensors")
    cli_runner("eval", "--recipe", str(run / "recipe.json"), "--checkpoint", path, "--out", str(tmp_path / "b"))
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["checkpoint"]["name"] == "best" and report["checkpoint"]["rule"] == "explicit"
    assert report["checkpoint"]["selected_by"]["split"] == "val"  # still says how that file was chosen
    assert set(read_per_example(tmp_path / "b")) == {"best"}


def test_best_with_the_weights_of_last_is_evaluated_once(tmp_path, monkeypatch):
    import advdistill.evaluation.api as api

    calls = []
    original = api.evaluate_model
    monkeypatch.setattr(api, "evaluate_model", lambda *a, **k: calls.append(1) or original(*a, **k))
    run = ad.train(recipe_file(tmp_path, "one", 1), tmp_path / "one")  # one epoch: best is last
    report = json.loads((run / "report.json").read_text())
    assert len(calls) == 1
    assert report["checkpoints"]["best"]["same_weights_as"] == "last"
    assert report["checkpoints"]["best"]["metrics"] == report["checkpoints"]["last"]["metrics"]
    records = read_per_example(run)
    assert all(torch.equal(records["best"][k], records["last"][k]) for k in records["last"])
    assert "same weights as last" in (run / "report.md").read_text()
