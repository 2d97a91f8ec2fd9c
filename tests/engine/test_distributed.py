"""Two gloo processes under torchrun train the same weights as one process on the whole batch."""

import subprocess
import sys

import torch
from safetensors.torch import load_file

import advdistill as ad


def test_two_process_ddp_matches_single_process(tiny_recipe, tmp_path):
    # no random start (each process has its own attack stream) and a BN-free model (per-shard
    # BatchNorm statistics would differ): then DDP's averaged gradients equal the full batch's
    recipe = tiny_recipe(
        attack={"kind": "pgd", "eps": "8/255", "step_size": "2/255", "steps": 2, "start": "none"},
        train={"epochs": 2, "batch_size": 8, "log_every": 2, "device": "cpu"},
        eval={"at_end": False},
    )
    single = ad.train(recipe, tmp_path / "single", overrides=["train.batch_size=16"])
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "advdistill.cli", "train", str(recipe), "--out", str(tmp_path / "ddp"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    a = load_file(str(single / "checkpoints" / "last.safetensors"))
    b = load_file(str(tmp_path / "ddp" / "checkpoints" / "last.safetensors"))
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6, rtol=1e-5), key
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert sum('"event": "epoch"' in line for line in lines) == 2  # written once, by rank 0
