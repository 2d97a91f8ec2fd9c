"""The ema callback: the decay schedule and the average against a hand-written recurrence (BatchNorm
statistics included), the update cadence, and a run: ema.safetensors, periodic ema/... keys, an
`ema` row in the report with per-example records."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import advdistill as ad
from advdistill.interfaces import StepInfo
from advdistill.testing import TINY_RECIPE, check_callback, make_run_state, tiny_model
from advdistill_plugins.callbacks.ema import EMA, EMAConfig, ema_decay


def test_decay_schedules():
    assert [ema_decay(EMAConfig(decay=0.99), n) for n in (1, 2, 50, 10_000)] == pytest.approx(
        [2 / 11, 3 / 12, 51 / 60, 0.99])
    power = EMAConfig(decay=0.999, warmup="power", warmup_power=0.75)
    assert ema_decay(power, 3) == pytest.approx(1 - 4 ** -0.75)
    assert ema_decay(power, 10**9) == 0.999
    assert ema_decay(EMAConfig(decay=0.9, warmup="none"), 1) == 0.9


def snapshots(count):
    """``count`` states of a BatchNorm model, as training would leave them (weights and statistics move)."""
    model = tiny_model(seed=1).train()
    generator = torch.Generator().manual_seed(0)
    states = []
    for _ in range(count):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=generator) * 0.1)
            model(torch.rand(4, 1, 8, 8, generator=generator))  # moves running_mean/var, num_batches_tracked
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    return model, states


@pytest.mark.parametrize("warmup", ["count", "power", "none"])
def test_the_average_is_the_recurrence_of_every_float_tensor(warmup):
    """a_0 = s_0; a_n = d_n·a_{n−1} + (1 − d_n)·s_n for weights AND BatchNorm running statistics;
    num_batches_tracked is the model's."""
    config = EMAConfig(decay=0.8, warmup=warmup)
    model, states = snapshots(5)
    ema = EMA(config)
    ema.average = tiny_model(seed=9)  # what on_train_start builds; its values are replaced by the first update
    expected = None
    for n, state in enumerate(states):
        model.load_state_dict(state)
        ema.update(model)
        if expected is None:
            expected = {k: v.clone() for k, v in state.items()}
        else:
            d = ema_decay(config, n)
            expected = {k: (d * expected[k] + (1 - d) * v) if v.is_floating_point() else v.clone()
                        for k, v in state.items()}
    got = ema.average.state_dict()
    assert {"1.running_mean", "1.running_var"} <= set(got)
    for key, value in expected.items():
        assert torch.allclose(got[key], value, rtol=1e-6, atol=1e-7), key
    assert int(got["1.num_batches_tracked"]) == int(states[-1]["1.num_batches_tracked"])
    assert ema.updates == 5


def test_update_every_k_steps(tiny_recipe, tmp_path):
    run = make_run_state(tiny_recipe(), tmp_path)
    ema = EMA(EMAConfig(every=3))
    ema.on_train_start(run)
    assert run.models["ema"] is ema.average and not ema.average.training
    assert not any(p.requires_grad for p in ema.average.parameters())
    for step in range(7):
        info = StepInfo(1, step, 7, step, torch.tensor(1.0), 0.1, {})
        ema.on_step_end(run, info)
    assert ema.updates == 2  # after steps 3 and 6


def test_the_ema_callback_keeps_the_contract(tiny_recipe, tmp_path):
    run = make_run_state(tiny_recipe(), tmp_path, epochs=2)
    check_callback(EMA(EMAConfig()), run)  # includes the state_dict/load_state_dict round trip


def test_a_run_with_ema(tiny_recipe, tmp_path):
    recipe = tiny_recipe(
        data={**TINY_RECIPE["data"], "val_size": 16},
        train={**TINY_RECIPE["train"], "epochs": 2},
        callbacks={"progress": False, "ema": {"kind": "ema", "decay": 0.5},
                   "periodic_eval": {"kind": "periodic_eval", "limit": 16, "steps": 1}},
        eval={**TINY_RECIPE["eval"], "checkpoint": "ema"},
    )
    run = ad.train(recipe, tmp_path / "run")
    ema, last = load_file(str(run / "checkpoints" / "ema.safetensors")), load_file(str(run / "checkpoints" /
                                                                                        "last.safetensors"))
    assert ema.keys() == last.keys()
    assert any(not torch.equal(ema[k], last[k]) for k in ema if ema[k].is_floating_point())
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "epoch"]
    assert all({"clean", "pgd", "ema/clean", "ema/pgd"} <= set(r["eval"]) for r in epochs)
    report = json.loads((run / "report.json").read_text())
    assert list(report["checkpoints"]) == ["last", "best", "ema"]
    assert report["checkpoint"]["name"] == "ema" and report["checkpoint"]["rule"] == "ema"
    assert report["metrics"] == report["checkpoints"]["ema"]["metrics"]
    records = load_file(str(run / "per_example.safetensors"))
    assert {"ema/clean", "ema/pgd2", "last/clean", "best/pgd2"} <= set(records)
    assert "rule `ema`" in (run / "report.md").read_text()
    # evaluating the ema checkpoint alone gives its row's numbers again
    again = ad.evaluate(run, checkpoint="ema", out_dir=tmp_path / "again", show_progress=False)
    assert again["metrics"] == report["checkpoints"]["ema"]["metrics"]


def test_periodic_eval_can_leave_the_average_out(tiny_recipe, tmp_path):
    recipe = tiny_recipe(
        data={**TINY_RECIPE["data"], "val_size": 16}, eval={"at_end": False},
        callbacks={"progress": False, "ema": {"kind": "ema"},
                   "periodic_eval": {"kind": "periodic_eval", "limit": 16, "steps": 1, "others": False}},
    )
    run = ad.train(recipe, tmp_path / "run")
    epoch = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert set(epoch["eval"]) == {"clean", "pgd"}


def test_eval_checkpoint_ema_without_an_ema_falls_back_to_last(tiny_recipe, tmp_path):
    run = ad.train(tiny_recipe(eval={**TINY_RECIPE["eval"], "checkpoint": "ema"}), tmp_path / "run")
    report = json.loads((run / "report.json").read_text())
    assert report["checkpoint"]["name"] == "last"
    assert "exists only with the ema callback" in report["checkpoint"]["note"]
