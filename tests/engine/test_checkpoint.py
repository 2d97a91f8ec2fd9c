import pytest
import torch

from advdistill.engine.checkpoint import (
    load_training_state,
    load_weights,
    read_metadata,
    save_training_state,
    save_weights,
)
from advdistill.errors import CheckpointError


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Flatten(),
                               torch.nn.Linear(3 * 4 * 4, 2))


def test_weights_round_trip_with_metadata(tmp_path):
    model = make_model(0)
    model(torch.rand(4, 1, 6, 6))  # move BN running stats away from their init
    save_weights(tmp_path / "w.safetensors", model, {"epoch": 3, "note": "x"})
    other = make_model(1)
    meta = load_weights(tmp_path / "w.safetensors", other)
    assert meta == {"epoch": 3, "note": "x"}
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), k
    assert not list(tmp_path.glob(".*.tmp")), "temporary files must be renamed or removed"


def test_optimizer_and_rng_round_trip(tmp_path):
    for kind in ("sgd", "adamw"):
        model = make_model()
        opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if kind == "sgd"
               else torch.optim.AdamW(model.parameters(), lr=1e-3))
        for _ in range(2):
            model(torch.rand(4, 1, 6, 6)).sum().backward()
            opt.step()
        rng = {"cpu": torch.get_rng_state()}
        save_training_state(tmp_path / f"{kind}.state.safetensors", opt, {"epoch": 2}, rng)
        fresh = make_model()
        opt2 = (torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9) if kind == "sgd"
                else torch.optim.AdamW(fresh.parameters(), lr=1e-3))
        info, rng2 = load_training_state(tmp_path / f"{kind}.state.safetensors", opt2)
        assert info == {"epoch": 2, "has_weights": False} and torch.equal(rng2["cpu"], rng["cpu"])
        s1, s2 = opt.state_dict(), opt2.state_dict()
        assert s1["param_groups"] == s2["param_groups"]
        for pid, entry in s1["state"].items():
            for key, value in entry.items():
                other = s2["state"][pid][key]
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(other)), (kind, key)


def test_missing_truncated_and_mismatched_files_give_clear_errors(tmp_path):
    model = make_model()
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(tmp_path / "nope.safetensors", model)
    path = tmp_path / "w.safetensors"
    save_weights(path, model)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_weights(path, model)
    save_weights(path, torch.nn.Linear(3, 2))
    with pytest.raises(CheckpointError, match=r"does not match the model.*missing keys"):
        load_weights(path, model)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        (tmp_path / "junk.safetensors").write_text("hello")
        read_metadata(tmp_path / "junk.safetensors")


def test_shape_mismatch_is_named(tmp_path):
    save_weights(tmp_path / "w.safetensors", torch.nn.Linear(3, 2))
    with pytest.raises(CheckpointError, match=r"weight: file \(2, 3\) vs model \(4, 3\)"):
        load_weights(tmp_path / "w.safetensors", torch.nn.Linear(3, 4))


def test_stale_temporary_files_of_interrupted_writes_are_removed(tmp_path):
    from advdistill.engine.checkpoint import remove_stale_temp_files

    stale = tmp_path / ".last.state.safetensors.ab12_cd9.tmp"
    stale.write_bytes(b"half a file")
    keep = [tmp_path / "last.safetensors", tmp_path / ".hidden", tmp_path / "notes.tmp"]
    for path in keep:
        path.write_text("x")
    assert remove_stale_temp_files([tmp_path, tmp_path / "missing"]) == [stale]
    assert not stale.exists() and all(p.exists() for p in keep)


def test_state_file_with_weights_round_trips(tmp_path):
    model, other = make_model(0), make_model(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.rand(4, 1, 6, 6)).sum().backward()
    opt.step()
    save_training_state(tmp_path / "s.safetensors", opt, {"epoch": 1}, {"cpu": torch.get_rng_state()}, model=model)
    info, _ = load_training_state(tmp_path / "s.safetensors", torch.optim.SGD(other.parameters(), lr=0.1,
                                                                               momentum=0.9), model=other)
    assert info["format"] == 2 and info["has_weights"]
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), k
