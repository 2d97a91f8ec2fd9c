"""The wandb callback in offline mode (no network, no account), read back from the offline run's
transaction log with W&B's own reader (`wandb leet inspect --json`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advdistill.errors import PluginError

pytest.importorskip("wandb", reason="wandb is not installed (pip install 'advdistill[wandb]'); "
                                    "CI installs it and test_trackers_are_installed_in_ci requires it there")

from tracker_events import drive

from advdistill_plugins.callbacks.wandb_logger import WandbConfig, WandbLogger


def read_offline_run(run_dir: Path) -> list[dict]:
    """The records of an offline run directory (wandb/offline-run-*), decoded by W&B."""
    wandb_cli = Path(sys.executable).with_name("wandb")
    out = subprocess.run([str(wandb_cli), "leet", "inspect", "--json", str(run_dir)], capture_output=True,
                         text=True, check=True, timeout=120)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def offline_runs(run) -> list[Path]:
    return sorted((run.out_dir / "wandb").glob("offline-run-*"))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    # offline comes from the recipe key; nothing may reach for W&B's servers or a user's settings
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "")
    monkeypatch.setenv("WANDB_CONFIG_DIR", os.environ.get("TMPDIR", "/tmp"))


def test_offline_history_config_and_summary(tracked_run_state):
    run = tracked_run_state
    (run.out_dir / "report.json").write_text('{"metrics": {}}\n')
    expected = drive(WandbLogger(WandbConfig(mode="offline")), run)
    (folder,) = offline_runs(run)
    records = read_offline_run(folder)
    run_id = json.loads((run.out_dir / "tracking.json").read_text())["wandb"]["id"]
    assert folder.name.endswith(run_id)
    header = next(r["run"] for r in records if r["type"] == "run")
    assert header["run_id"] == run_id and header["project"] == "advdistill" and header["display_name"] == "tiny"
    history = {}
    for record in records:
        if record["type"] == "history":
            item = record["history"]["item"]
            history.update({(k, item["_step"]): v for k, v in item.items() if not k.startswith("_")})
    assert history == pytest.approx(expected)
    config = {}
    for record in records:
        if record["type"] == "config":
            config.update(record["config"]["update"])
    assert config["recipe_hash"] == run.recipe.hash and config["train"] == run.recipe.to_dict()["train"]
    summary = {}
    for record in records:
        if record["type"] == "summary":
            summary.update(record["summary"]["update"])
    assert summary["test/ema/pgd20"] == 27.5
    assert (folder / "files" / "report.json").is_file()


def test_a_resume_continues_the_same_wandb_run(tracked_run_state):
    run = tracked_run_state
    first = WandbLogger(WandbConfig(mode="offline"))
    drive(first, run)
    run.epoch, run.report = 1, None
    second = WandbLogger(WandbConfig(mode="offline"))
    second.on_train_start(run)
    second.on_epoch_end(run, {"event": "epoch", "epoch": 2, "train_loss": 0.125, "lr": 0.1, "seconds": 1.0})
    second.on_train_end(run)
    folders = offline_runs(run)
    ids = {next(folder.glob("run-*.wandb")).stem.removeprefix("run-") for folder in folders}
    assert len(folders) == 2 and ids == {first.run.id}  # two attempts, one W&B run
    records = read_offline_run(folders[-1])
    assert next(r["run"] for r in records if r["type"] == "run")["run_id"] == first.run.id
    losses = [r["history"]["item"]["epoch/train_loss"] for r in records if r["type"] == "history"]
    assert losses == [0.125]


def test_without_wandb_the_error_names_the_extra(tracked_run_state, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what a missing package looks like
    with pytest.raises(PluginError, match=r"pip install 'advdistill\[wandb\]'"):
        WandbLogger(WandbConfig(mode="offline")).on_train_start(tracked_run_state)
