"""Planted pickle payloads: nothing in a .pt file runs, trusted or not, in either torch.save format."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from rb_fabricate import TINY_WRN, layout_file

import advdistill as ad
from advdistill.errors import CheckpointError
from advdistill_plugins.teachers.files import read_state_dict

TINY = "Tiny2099Fabricated"


class Payload:
    """Unpickling this calls ``function(*args)``: a way to run code from a checkpoint file."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def payloads(marker):
    source = marker.parent / "source.txt"
    source.write_text("ran")
    return {
        "posix.system": Payload(os.system, f"touch {marker}"),
        "builtins.exec": Payload(exec, f"open({str(marker)!r}, 'w').write('ran')"),
        "builtins.eval": Payload(eval, f"open({str(marker)!r}, 'w').write('ran')"),
        "shutil.copyfile": Payload(shutil.copyfile, str(source), str(marker)),
    }


FORMATS = {"zip": True, "legacy": False}


def tiny_state():
    torch.manual_seed(0)
    return ad.create_model("wideresnet", num_classes=10, depth=10, widen_factor=1).state_dict()


def plant(path, payload, zip_format):
    state = tiny_state()
    torch.save({"state_dict": state, "epoch": 3, "extra": payload}, path,
               _use_new_zipfile_serialization=zip_format)
    return path


def test_the_payloads_are_real(tmp_path):
    """Without the safe loader (full unpickling) each payload does write the marker."""
    for name, payload in payloads(tmp_path / "marker").items():
        if name == "posix.system":
            continue  # the same as the others, through a shell
        path = plant(tmp_path / f"{name}.pt", payload, True)
        torch.load(path, weights_only=False)
        assert (tmp_path / "marker").exists(), name
        (tmp_path / "marker").unlink()


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("trust", [True, False])
def test_nothing_runs_and_the_refusal_names_the_global(fmt, trust, tmp_path):
    marker = tmp_path / "marker"
    for name, payload in payloads(marker).items():
        path = plant(tmp_path / f"{name}.pt", payload, FORMATS[fmt])
        with pytest.raises(CheckpointError) as err:
            read_state_dict(path, trust_pickle=trust)
        assert not marker.exists(), f"{name} ran ({fmt}, trust_pickle={trust})"
        if trust:
            assert f"asks the unpickler for {name!r}" in str(err.value), str(err.value)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_robustbench_teacher_with_trust_runs_nothing(fmt, tmp_path):
    marker = tmp_path / "marker"
    path = plant(layout_file(tmp_path, TINY), payloads(marker)["builtins.exec"], FORMATS[fmt])
    loader = ad.build("teacher", "robustbench", name=TINY, model_dir=str(tmp_path), model=dict(TINY_WRN),
                      trust_pickle=True)
    with pytest.raises(CheckpointError, match=r"asks the unpickler for 'builtins.exec'") as err:
        loader.load(num_classes=10, in_chans=3)
    assert f"Put that file at {path}" in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_teacher_convert_follows_the_same_rule(fmt, tmp_path, cli_runner):
    marker = tmp_path / "marker"
    src = plant(tmp_path / "src.pt", payloads(marker)["posix.system"], FORMATS[fmt])
    dst = tmp_path / "dst.safetensors"
    result = cli_runner("teacher", "convert", str(src), str(dst), "--arch", "wideresnet", "--param", "depth=10",
                        "--param", "widen_factor=1", exit_code=2)
    assert "asks the unpickler for 'posix.system'" in result.output and "Traceback" not in result.output
    assert not marker.exists() and not dst.exists()


def test_plain_training_metadata_of_real_checkpoints_is_read(tmp_path):
    """What RobustBench's .pt files (and the training scripts they come from) hold next to the weights."""
    import argparse
    from collections import OrderedDict

    import numpy as np

    state = tiny_state()
    checkpoint = {
        "state_dict": OrderedDict((f"module.{k}", v) for k, v in state.items()), "epoch": 99,
        "best_acc": np.float64(0.5712), "acc_history": np.array([0.3, 0.5]), "steps": np.int64(1000),
        "args": argparse.Namespace(lr=0.1, arch="wrn"),
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
    }
    for zip_format in (True, False):
        path = tmp_path / f"meta-{zip_format}.pt"
        torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)
        loaded = read_state_dict(path, trust_pickle=True)
        assert set(loaded) == set(state)
        assert all(torch.equal(loaded[k], state[k]) for k in state)
