"""torchrun with two gloo processes on the CPU: the global batch, the sharded evaluation, one
process printing, the process-group timeout; real subprocesses throughout."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import advdistill as ad
from advdistill.engine import trainer as trainer_module
from advdistill.engine.distributed import DistInfo, per_process_batch
from advdistill.errors import RecipeError


def torchrun(*args, env=None, timeout=300):
    """``torchrun --nproc_per_node 2 -m advdistill.cli ARGS`` (one thread per process)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "advdistill.cli", *map(str, args)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=environment)


def deterministic_recipe(tiny_recipe, **train):
    # no random start (each process has its own attack stream) and the BN-free small_cnn (per-shard
    # BatchNorm statistics would differ): then DDP's averaged gradients equal the full batch's
    return tiny_recipe(
        attack={"kind": "pgd", "eps": "8/255", "step_size": "2/255", "steps": 2, "start": "none"},
        train={"epochs": 2, "batch_size": 16, "log_every": 2, "device": "cpu", **train},
        eval={"at_end": False, "checks": False, "batch_size": 8,
              "metrics": {"clean": {"kind": "clean"}, "pgd": {"kind": "pgd", "steps": 2, "random_start": False}}},
    )


def test_the_global_batch_is_split_over_the_processes(tiny_recipe, tmp_path):
    # the same recipe (batch_size = 16) in one process and in two (8 each) trains the same weights
    recipe = deterministic_recipe(tiny_recipe)
    single = ad.train(recipe, tmp_path / "single")
    result = torchrun("train", recipe, "--out", tmp_path / "ddp")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    a = load_file(str(single / "checkpoints" / "last.safetensors"))
    b = load_file(str(tmp_path / "ddp" / "checkpoints" / "last.safetensors"))
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6, rtol=1e-5), key
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert sum('"event": "epoch"' in line for line in lines) == 2  # written once, by process 0
    assert result.stdout.count("run directory:") == 1  # printed once, by process 0


def test_batch_size_per_process_keeps_the_other_meaning(tiny_recipe, tmp_path):
    # 2 processes x 8 images = the single process's batch of 16
    recipe = deterministic_recipe(tiny_recipe, epochs=1)
    single = ad.train(recipe, tmp_path / "single")
    result = torchrun("train", recipe, "--out", tmp_path / "ddp", "--set", "train.batch_size=1000",
                      "--set", "train.batch_size_per_process=8")
    assert result.returncode == 0, result.stderr[-4000:]
    a = load_file(str(single / "checkpoints" / "last.safetensors"))
    b = load_file(str(tmp_path / "ddp" / "checkpoints" / "last.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6, rtol=1e-5) for k in a)


def test_per_process_batch():
    assert per_process_batch(128, None, 1) == 128
    assert per_process_batch(128, None, 4) == 32
    assert per_process_batch(128, 64, 4) == 64
    with pytest.raises(RecipeError, match=r"train.batch_size = 10 .* does not divide over 4 processes: use a "
                                          r"multiple of 4 \(e.g. 8 or 12\), or set train.batch_size_per_process"):
        per_process_batch(10, None, 4)
    with pytest.raises(RecipeError, match=r"e.g. 3\)"):
        per_process_batch(2, None, 3)


def test_a_global_batch_that_does_not_divide_is_refused_before_anything_is_built(tiny_recipe, tmp_path,
                                                                                monkeypatch):
    monkeypatch.setattr(trainer_module, "setup", lambda device, timeout: (DistInfo(0, 0, 3), "cpu"))
    monkeypatch.setattr(trainer_module, "load_data", lambda recipe: pytest.fail("data loaded"))
    with pytest.raises(RecipeError, match=r"train.batch_size = 16 .* does not divide over 3 processes"):
        ad.train(tiny_recipe(), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_final_evaluation_is_sharded_and_equals_a_one_process_evaluation(tiny_recipe, tmp_path):
    recipe = deterministic_recipe(tiny_recipe, epochs=1)
    run = tmp_path / "ddp"
    # 32 test images over 2 processes, evaluated in batches of 8; the sanity checks run in process 0
    result = torchrun("train", recipe, "--out", run, "--set", "eval.at_end=true",
                      "--set", 'eval.checks={skip = ["black_box"]}')
    assert result.returncode == 0, result.stderr[-4000:]
    sharded = json.loads((run / "report.json").read_text())
    records = load_file(str(run / "per_example.safetensors"))
    assert sharded["errors"] == {} and sharded["n_examples"] == 32 and "checks" in sharded
    assert records["last/clean"].shape == (32,) and torch.equal(records["index"], torch.arange(32))
    assert result.stdout.count("# Evaluation report") == 1
    one = ad.evaluate(run, out_dir=tmp_path / "one", checks=True, show_progress=False)
    assert one["metrics"] == sharded["metrics"]
    # what each number is (threat model, images, unit) travels with the parts
    described = ("threat", "attack", "n_examples", "unit", "label")
    assert {k: {f: v.get(f) for f in described} for k, v in sharded["metric_info"].items()} == \
           {k: {f: v.get(f) for f in described} for k, v in one["metric_info"].items()}
    # process 0 alone prints the progress lines, with the merged numbers: one opening line per checkpoint
    evaluated = [c for c in sharded["checkpoints"].values() if "same_weights_as" not in c]
    assert sum(line.startswith("eval: [1/") for line in result.stderr.splitlines()) == len(evaluated)
    assert one["checks"]["flagged"] == sharded["checks"]["flagged"]
    again = load_file(str(tmp_path / "one" / "per_example.safetensors"))
    assert set(again) == set(records) and all(torch.equal(again[k], records[k]) for k in records)


@pytest.mark.slow
def test_eval_under_torchrun_shards_and_prints_once(tiny_recipe, tmp_path):
    recipe = tiny_recipe(eval={"checks": False, "batch_size": 8, "at_end": False,
                               "metrics": {"clean": {"kind": "clean"}, "pgd": {"kind": "pgd", "steps": 2}}})
    run = ad.train(recipe, tmp_path / "run")
    result = torchrun("eval", run, "--out", tmp_path / "two", "--limit", "21")  # 11 + 10 images
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.count("# Evaluation report") == 1
    two = json.loads((tmp_path / "two" / "report.json").read_text())
    one = ad.evaluate(run, out_dir=tmp_path / "one", limit=21, show_progress=False)
    assert two["n_examples"] == one["n_examples"] == 21 and two["errors"] == {}
    assert two["metrics"]["clean"] == one["metrics"]["clean"]  # deterministic: equal
    # PGD's random start draws per part: the same images, other draws (the merge itself is exact)
    flags = load_file(str(tmp_path / "two" / "per_example.safetensors"))
    assert flags["last/pgd2"].shape == (21,)
    assert two["metrics"]["pgd2"] == pytest.approx(100 * flags["last/pgd2"].float().mean().item())


@pytest.mark.slow
def test_two_processes_print_once_and_warn_nothing_about_gradient_layouts(tiny_recipe, tmp_path):
    # a ResNet (1x1 stride-2 shortcut convolutions) on crop-augmented batches: the crop used to leave
    # batches channels-last, and DDP warned "Grad strides do not match bucket view strides" per process
    recipe = tiny_recipe(
        data={"kind": "synthetic", "n_train": 16, "n_test": 8, "num_classes": 4, "image_size": 32, "in_chans": 3},
        student={"kind": "cifar_resnet18"},
        train={"epochs": 1, "batch_size": 8, "max_steps_per_epoch": 1, "augment": "crop_flip", "crop_padding": 2,
               "device": "cpu", "log_every": 1, "audit_teacher": False},
        eval={"at_end": True, "checks": False, "batch_size": 8, "metrics": {"clean": {"kind": "clean"}}},
    )
    result = torchrun("train", recipe, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Grad strides" not in result.stderr
    assert result.stdout.count("run directory:") == 1 and result.stdout.count("# Evaluation report") == 1
    # said once (process 0), not once per process
    assert result.stderr.count("train.max_steps_per_epoch = 1 cuts every epoch to 1 of its 2 steps") == 1


@pytest.mark.slow
def test_a_process_that_waits_longer_than_dist_timeout_min_fails_with_the_setting_named(tiny_recipe, tmp_path):
    # process 0 stops before its first save (a stand-in for a long evaluation); process 1 waits at the
    # end of the epoch and gives up after train.dist_timeout_min (3 s), naming the setting
    recipe = deterministic_recipe(tiny_recipe, epochs=1, dist_timeout_min=0.05)
    result = torchrun("train", recipe, "--out", tmp_path / "run", timeout=240,
                      env={"ADVDISTILL_TEST_PAUSE_AT": "epoch-end:before-save:1"})
    assert result.returncode != 0
    assert "Error (process 1): process 1 of 2 waited longer than train.dist_timeout_min (0.05 minutes)" in \
        result.stderr, result.stderr[-4000:]
