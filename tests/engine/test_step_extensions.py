"""The engine's extension points: step extensions run where the step says (after the attack, around the
update, in `order`), and a component's checkpoint state and weight exports travel in the one
checkpoint file."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

import advdistill as ad
from advdistill import hookimpl
from advdistill.errors import TrainingError
from advdistill.interfaces import Callback, StepExtension
from advdistill.testing import TINY_RECIPE

EVENTS: list[tuple] = []


class Recorder(StepExtension):
    """Records what each point of the step sees."""

    order = 5

    def before_loss(self, step):
        weight = next(step.model.parameters())
        EVENTS.append(("before_loss", step.ctx.x_adv is not None, step.ctx.logs == {}))
        self.weight_before = weight.detach().clone()
        # the recipe's loss at the current weights: a tensor with gradients, the step's context untouched
        loss = step.loss()
        assert loss.requires_grad and loss.dim() == 0

    def before_update(self, step):
        weight = next(step.model.parameters())
        EVENTS.append(("before_update", weight.grad is not None, torch.equal(weight.detach(), self.weight_before)))

    def after_update(self, step):
        weight = next(step.model.parameters())
        EVENTS.append(("after_update", not torch.equal(weight.detach(), self.weight_before)))


class First(StepExtension):
    order = -5

    def before_loss(self, step):
        EVENTS.append(("first",))


class StepCounter(Callback):
    """Counts optimizer steps; the count is checkpoint state, and it exports a copy of the student."""

    def on_train_start(self, run):
        self.count = torch.zeros((), dtype=torch.int64)
        self.copy = run.student

    def on_step_end(self, run, step):
        self.count += 1

    def state_dict(self):
        return {"count": self.count.clone()}

    def load_state_dict(self, state):
        EVENTS.append(("loaded", int(state["count"])))
        self.count = state["count"].clone()

    def on_train_end(self, run):
        EVENTS.append(("count", int(self.count)))

    def weight_exports(self):
        return {"counted": self.copy}


class Plugin:
    @hookimpl
    def register_step_extensions(self, register):
        register("recorder", Recorder, summary="records the step (test)")
        register("first", First, summary="runs first (test)")

    @hookimpl
    def register_callbacks(self, register):
        register("step_counter", StepCounter, summary="counts steps (test)")


def test_step_extensions_run_at_their_points_in_order(tiny_recipe, tmp_path, register_plugin):
    register_plugin(Plugin(), name="test-extensions")
    EVENTS.clear()
    recipe = tiny_recipe(step_extensions={"rec": {"kind": "recorder"}, "one": {"kind": "first"}},
                         train={**TINY_RECIPE["train"], "max_steps_per_epoch": 2}, eval={"at_end": False})
    ad.train(recipe, tmp_path / "run")
    one_step = [("first",), ("before_loss", True, True), ("before_update", True, True), ("after_update", True)]
    assert one_step * 2 == EVENTS


def test_component_state_is_saved_in_the_checkpoint_and_given_back_on_resume(tiny_recipe, tmp_path, register_plugin):
    register_plugin(Plugin(), name="test-extensions")
    EVENTS.clear()
    train = {**TINY_RECIPE["train"], "epochs": 2, "max_steps_per_epoch": 3}
    recipe = tiny_recipe(callbacks={"progress": False, "steps": {"kind": "step_counter"}}, train=train,
                         eval={"at_end": False})
    run = ad.train(recipe, tmp_path / "run")
    state_file = run / "checkpoints" / "last.state.safetensors"
    with safe_open(str(state_file), framework="pt") as fh:
        assert int(fh.get_tensor("component/callbacks.steps/count")) == 6
    exported = run / "checkpoints" / "counted.safetensors"
    meta = json.loads(safe_open(str(exported), framework="pt").metadata()["exported_by"])
    assert meta == "callbacks.steps"
    assert EVENTS == [("count", 6)]

    EVENTS.clear()  # continue the finished run for one more epoch: the count goes on from 6
    more = tiny_recipe("more.toml", callbacks={"progress": False, "steps": {"kind": "step_counter"}},
                       train={**train, "epochs": 3}, eval={"at_end": False})
    ad.train(more, run, resume=True, allow_recipe_change=True)
    assert EVENTS == [("loaded", 6), ("count", 9)]


class BadExport(Callback):
    def on_train_start(self, run):
        self.model = run.student

    def weight_exports(self):
        return {"last": self.model}


class BadPlugin:
    @hookimpl
    def register_callbacks(self, register):
        register("bad_export", BadExport, summary="exports over last (test)")


def test_an_export_may_not_replace_last_or_best(tiny_recipe, tmp_path, register_plugin):
    register_plugin(BadPlugin(), name="bad-export")
    recipe = tiny_recipe(callbacks={"progress": False, "bad": {"kind": "bad_export"}}, eval={"at_end": False})
    with pytest.raises(TrainingError, match=r"\[callbacks.bad\] exports weights as 'last'"):
        ad.train(recipe, tmp_path / "run")


def test_recipes_without_step_extensions_keep_their_hash(tiny_recipe):
    plain = ad.load_recipe(tiny_recipe())
    assert "step_extensions" not in plain.to_dict()
    with_awp = ad.load_recipe(tiny_recipe("awp.toml", step_extensions={"awp": {"kind": "awp"}}))
    assert with_awp.to_dict()["step_extensions"] == {"awp": {"kind": "awp", "gamma": 0.005, "start_epoch": 1,
                                                             "loss": "objective"}}
    assert with_awp.hash != plain.hash
    assert ad.load_recipe(tiny_recipe("off.toml", step_extensions={"awp": False})).hash == plain.hash
