"""A real `advdistill train` process killed (SIGKILL) at each moment of a save; `--resume` then
ends bitwise equal to an uninterrupted run (CPU, one thread). The run keeps an EMA of its weights
(a component state inside the checkpoint file, exported as ema.safetensors) and trains with AWP."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

import advdistill as ad
from advdistill.testing import TINY_RECIPE, to_toml

TIMING = ("seconds", "images_per_s")


def _recipe_text() -> str:
    data = copy.deepcopy(TINY_RECIPE)
    data["train"] = {"epochs": 2, "batch_size": 16, "log_every": 2, "device": "cpu"}
    data["data"] = {**data["data"], "val_size": 16}
    # a periodic evaluation every epoch (on the validation split), so that best.safetensors is written too;
    # an EMA, whose state must come back from the checkpoint exactly
    data["callbacks"] = {"progress": False, "periodic_eval": {"kind": "periodic_eval", "limit": 16, "steps": 1},
                         "ema": {"kind": "ema", "decay": 0.7}}
    data["step_extensions"] = {"awp": {"kind": "awp", "gamma": 0.01}}
    data["eval"] = {"at_end": False}
    return to_toml(data)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The recipe and an uninterrupted run of it."""
    root = tmp_path_factory.mktemp("reference")
    recipe = root / "recipe.toml"
    recipe.write_text(_recipe_text())
    torch.set_num_threads(1)
    return recipe, ad.train(recipe, root / "run")


def records(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def assert_same_run(run, ref):
    for name in ("last", "best", "ema"):
        a = load_file(str(ref / "checkpoints" / f"{name}.safetensors"))
        b = load_file(str(run / "checkpoints" / f"{name}.safetensors"))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert records(run) == records(ref)
    assert not list(run.rglob(".*.tmp")), "temporary files of interrupted writes must be removed"


# (pause point, what the run directory holds right after the kill)
KILLS = {
    # the checkpoint's temporary file is complete but not renamed: no checkpoint yet
    "atomic-write:last.state.safetensors": "no-checkpoint",
    # the checkpoint is in place, its weight exports are not (first save: no last.safetensors)
    "save:after-state:1": "state-only",
    # epoch 2's checkpoint is in place; last.safetensors (and ema.safetensors) still hold epoch 1
    "save:after-state:2": "stale-export",
    # last.safetensors exported, best.safetensors (improved in epoch 1) not yet
    "save:after-last:1": "no-best",
    # every epoch trained (and no final evaluation): last.safetensors exported, ema.safetensors not yet;
    # the resume must not take the run for finished
    "save:after-last:2": "stale-ema",
    # the epoch record is in metrics.jsonl, the checkpoint is not written
    "epoch-end:before-save:1": "no-checkpoint",
    # in the middle of epoch 2
    "step:5": "epoch-1",
}
FAST = {"save:after-state:2"}  # the others take ~10 s each: run with the slow tests


@pytest.mark.parametrize(
    "point", [p if p in FAST else pytest.param(p, marks=pytest.mark.slow) for p in KILLS]
)
def test_kill_at_any_moment_then_resume_is_exact(point, reference, paused_cli, tmp_path):
    recipe, ref = reference
    run = tmp_path / "run"
    paused_cli(["train", recipe, "--out", run], point).kill()
    ckpt = run / "checkpoints"
    state = ckpt / "last.state.safetensors"
    after = KILLS[point]
    if after == "no-checkpoint":
        assert not state.exists()
    elif after == "state-only":
        assert state.exists() and not (ckpt / "last.safetensors").exists()
    elif after == "stale-export":
        from advdistill.engine.checkpoint import read_metadata

        assert read_metadata(ckpt / "last.safetensors")["epoch"] == 1  # a complete, usable weights file
        assert read_metadata(ckpt / "ema.safetensors")["epoch"] == 1
    elif after == "no-best":
        assert (ckpt / "last.safetensors").exists() and not (ckpt / "best.safetensors").exists()
    elif after == "stale-ema":
        from advdistill.engine.checkpoint import read_metadata

        assert read_metadata(ckpt / "last.safetensors")["epoch"] == 2
        assert read_metadata(ckpt / "ema.safetensors")["epoch"] == 1
    if point.startswith("atomic-write"):
        assert list(ckpt.glob(".last.state.safetensors.*.tmp")), "the kill should leave the temporary file"

    ad.train(recipe, run, resume=True)
    assert_same_run(run, ref)


def test_a_second_train_or_eval_into_a_running_run_is_refused(reference, paused_cli, cli_runner, tmp_path, caplog):
    import logging
    import socket

    recipe, ref = reference
    run = tmp_path / "run"
    first = paused_cli(["train", recipe, "--out", run], "step:5")  # epoch 1 is saved, epoch 2 runs
    owner = f"pid {first.pid} on host {socket.gethostname()}"
    for args in (["train", recipe, "--out", run], ["train", recipe, "--out", run, "--resume"],
                 ["eval", run, "--metrics", "clean"]):
        result = cli_runner(*map(str, args), exit_code=2)
        assert "in use by another advdistill process" in result.output and owner in result.output, result.output
        assert "advdistill train" in result.output
    records_before = (run / "metrics.jsonl").read_text()
    first.kill()  # SIGKILL: the lock file stays behind, naming a dead process
    assert (run / "metrics.jsonl").read_text() == records_before, "the refused commands wrote nothing"
    with caplog.at_level(logging.WARNING):
        cli_runner("train", str(recipe), "--out", str(run), "--resume")
    assert f"took over the lock of {run.resolve()} left by pid {first.pid}" in caplog.text
    assert_same_run(run, ref)


def _file_size_limit(limit):
    import resource

    def apply():  # in the child: files beyond `limit` bytes fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_stops_cleanly_and_resume_continues(reference, tmp_path):
    import os
    import subprocess
    import sys

    recipe, ref = reference
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the checkpoint file (~13 kB) no longer fits; recipe.json, metrics.jsonl and weights (< 8 kB) do
    result = subprocess.run([sys.executable, "-m", "advdistill.cli", "train", str(recipe), "--out", str(run)],
                            capture_output=True, text=True, env=env, preexec_fn=_file_size_limit(8000), timeout=300)
    assert result.returncode == 2, result.stderr
    assert "File too large" in result.stderr and "Traceback" not in result.stderr
    assert "no checkpoint had been written yet" in result.stderr and "--resume" in result.stderr
    assert not list(run.rglob("*.tmp")) and not (run / "checkpoints" / "last.state.safetensors").exists()
    ad.train(recipe, run, resume=True)
    assert_same_run(run, ref)
