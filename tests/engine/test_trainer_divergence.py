"""The divergence guard keeps no exploded weights, says what is true, and its advice works;
--init-from and --resume --allow-recipe-change."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import torch
from attrs import define, field
from safetensors.torch import load_file

import advdistill as ad
from advdistill import hookimpl
from advdistill.config import integer
from advdistill.errors import CheckpointError, TrainingError
from advdistill.interfaces import Schedule

TRAIN = {"epochs": 3, "batch_size": 16, "log_every": 2, "device": "cpu", "max_loss": 10}


@define(frozen=True, kw_only=True)
class SpikeConfig:
    epoch: int = field(validator=integer(1))


class Spike(Schedule):
    """lr 0.05, and 1e6 on the last step of one epoch: that step's update explodes the weights."""

    Config = SpikeConfig

    def __call__(self, progress):
        last = progress.step_in_epoch == progress.steps_per_epoch - 1
        return 1e6 if progress.epoch == self.config.epoch and last else 0.05


class SpikePlugin:
    @hookimpl
    def register_schedules(self, register):
        register("spike", Spike, summary="test: an lr spike on the last step of one epoch")


@pytest.fixture
def spike(register_plugin):
    register_plugin(SpikePlugin(), name="spike")


def suggested_commands(message):
    return [shlex.split(command) for command in re.findall(r"`(advdistill train [^`]+)`", message)]


def test_an_update_that_explodes_on_the_last_step_of_an_epoch_is_never_kept(spike, tiny_recipe, tmp_path, cli_runner):
    recipe = tiny_recipe(train=TRAIN, optim={"kind": "sgd", "lr": {"kind": "spike", "epoch": 2}})
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as err:
        ad.train(recipe, run)
    message = str(err.value)
    assert "The weights diverged at the end of epoch 2" in message
    assert f"Kept: {run / 'checkpoints'} holds epoch 1" in message and "nothing of epoch 2 was saved" in message
    assert "train.grad_clip" in message and "aux." not in message  # no aux loss in this recipe: not suggested
    # what is kept is sane: epoch 1's weights, finite, state and export from the same save
    weights = load_file(str(run / "checkpoints" / "last.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())
    from advdistill.engine.checkpoint import read_metadata

    assert read_metadata(run / "checkpoints" / "last.safetensors")["epoch"] == 1
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["event"] == "diverged" and records[-1]["epoch"] == 2
    # the advice works as written: continue from epoch 1 with a lower (constant) learning rate
    resume, new_run = suggested_commands(message)
    assert "--allow-recipe-change" in resume
    cli_runner(*resume[1:])
    assert read_metadata(run / "checkpoints" / "last.safetensors")["epoch"] == 3
    saved = json.loads((run / "recipe.json").read_text())
    assert saved["optim"]["lr"] == 0.005 and saved["history"][0]["event"] == "recipe_change"
    assert saved["history"][0]["changed"] == {"optim.lr": [{"kind": "spike", "epoch": 2}, 0.005]}
    # and the other way: a new run from the kept weights
    new_run[new_run.index("RECIPE")] = str(run / "recipe.json")
    new_run[new_run.index("NEW_DIR")] = str(tmp_path / "new")
    cli_runner(*new_run[1:])
    assert json.loads((tmp_path / "new" / "recipe.json").read_text())["history"][0]["event"] == "init_from"


def test_divergence_before_the_first_checkpoint_says_so_and_names_this_recipes_knobs(tiny_recipe, tmp_path,
                                                                                      cli_runner):
    recipe = tiny_recipe(train={**TRAIN, "epochs": 1}, optim={"kind": "sgd", "lr": 1e30},
                         aux={"pairing": {"kind": "alp", "weight": 3.0}})  # the example plugin's aux loss
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as err:
        ad.train(recipe, run)
    message = str(err.value)
    assert "No checkpoint exists yet: the run diverged in epoch 1, before its first save." in message
    assert "Kept:" not in message and "lower aux.pairing.weight (3 in epoch 1)" in message
    assert "igdm" not in message
    [restart] = suggested_commands(message)
    assert "--allow-recipe-change" not in restart and "optim.lr=1e+29" in restart
    restart[restart.index("optim.lr=1e+29")] = "optim.lr=0.05"  # 1e29 would diverge again, of course
    cli_runner(*restart[1:])
    assert (run / "checkpoints" / "last.state.safetensors").exists()


def test_allow_recipe_change_extends_a_finished_run_and_refuses_structural_changes(tiny_recipe, tmp_path):
    recipe = tiny_recipe(train={**TRAIN, "epochs": 1})
    run = ad.train(recipe, tmp_path / "run")
    with pytest.raises(CheckpointError, match="--allow-recipe-change"):
        ad.train(recipe, run, resume=True, overrides=["train.epochs=2"])
    ad.train(recipe, run, resume=True, overrides=["train.epochs=2"], allow_recipe_change=True)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1, 2]
    change = next(r for r in records if r["event"] == "recipe_change")
    assert change["epoch"] == 1 and change["changed"] == {"train.epochs": [1, 2]}
    with pytest.raises(CheckpointError) as err:
        ad.train(recipe, run, resume=True, overrides=["train.epochs=3", "student.hidden=16", "train.seed=4"],
                 allow_recipe_change=True)
    message = str(err.value)
    assert "student.hidden (8 -> 16)" in message and "train.seed (0 -> 4)" in message
    assert "train.epochs (" not in message and "--init-from" in message


def test_init_from_loads_the_student_weights_strictly_and_is_recorded(tiny_recipe, tmp_path):
    source = ad.train(tiny_recipe(train={**TRAIN, "epochs": 1}), tmp_path / "source")
    weights = source / "checkpoints" / "last.safetensors"
    # lr 0: the parameters stay exactly what --init-from loaded
    run = ad.train(tiny_recipe(train={**TRAIN, "epochs": 1}), tmp_path / "run", overrides=["optim.lr=0"],
                   init_from=weights)
    student = ad.create_model("small_cnn", num_classes=4, in_chans=1, widths=[4], hidden=8)
    names = {name for name, _ in student.named_parameters()}
    before, after = load_file(str(weights)), load_file(str(run / "checkpoints" / "last.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in names)
    [event] = json.loads((run / "recipe.json").read_text())["history"]
    assert event["event"] == "init_from" and event["path"] == str(weights) and event["source_epoch"] == 1
    other = tiny_recipe(train={**TRAIN, "epochs": 1}, student={"kind": "small_cnn", "widths": [4], "hidden": 16})
    with pytest.raises(CheckpointError, match=r"--init-from .* does not match the model.*shape mismatches"):
        ad.train(other, tmp_path / "other", init_from=weights)
    partial = ad.train(other, tmp_path / "partial", init_from=weights, init_strict=False)
    assert json.loads((partial / "recipe.json").read_text())["history"][0]["kept_random"]


def test_a_run_without_its_training_state_points_to_init_from_and_that_works(tiny_recipe, tmp_path, cli_runner):
    recipe = tiny_recipe(train={**TRAIN, "epochs": 1})
    run = ad.train(recipe, tmp_path / "run")
    (run / "checkpoints" / "last.state.safetensors").unlink()
    result = cli_runner("train", str(recipe), "--out", str(run), "--resume", exit_code=2)
    [command] = suggested_commands(result.output.replace("\n", " "))
    command[command.index("RECIPE")] = str(recipe)
    command[command.index("NEW_DIR")] = str(tmp_path / "continued")
    cli_runner(*command[1:])
