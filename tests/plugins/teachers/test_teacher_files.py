import hashlib

import pytest
import torch

from advdistill.errors import CheckpointError
from advdistill_plugins.teachers.files import (
    drop_redundant_buffers,
    extract_state_dict,
    read_pickle_checkpoint,
    read_state_dict,
    sha256_file,
    strip_prefixes,
)

T = torch.zeros(1)


def test_strip_prefixes_removes_real_wrapper_prefixes_only():
    assert list(strip_prefixes({"module.model.a": T, "module.model.b.c": T})) == ["a", "b.c"]
    assert list(strip_prefixes({"model.a": T})) == ["a"]
    # RobustBench's substring stripping would turn these into "le.x" / "l.y"; they are not prefixes
    assert list(strip_prefixes({"submodule.x": T, "other_model.y": T})) == ["submodule.x", "other_model.y"]
    # a prefix that only some keys carry is part of those names
    assert list(strip_prefixes({"module.a": T, "b": T})) == ["module.a", "b"]
    assert strip_prefixes({}) == {}


def test_extract_state_dict_unwraps_the_usual_containers():
    flat = {"w": torch.ones(2)}
    assert extract_state_dict({"state_dict": flat, "epoch": 3}, source="f") == flat
    assert extract_state_dict({"model_state_dict": flat, "optimizer": {}}, source="f") == flat
    assert extract_state_dict(flat, source="f") == flat
    module = torch.nn.Linear(2, 1)
    assert set(extract_state_dict(module, source="f")) == {"weight", "bias"}


@pytest.mark.parametrize(("obj", "message"), [
    ({"epoch": 3, "net": {"w": T}}, r"not a plain state_dict: entries that are not tensors: epoch \(int\)"),
    ([T, T], "holds list, not a state_dict"),
    ({}, "holds dict, not a state_dict"),
])
def test_extract_state_dict_explains_what_it_found(obj, message):
    with pytest.raises(CheckpointError, match=message):
        extract_state_dict(obj, source="ckpt.pt")


def test_sha256_matches_hashlib_over_the_bytes(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 5000)  # > one 1 MiB chunk
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha256_file(path, chunk=7) == sha256_file(path)


def test_legacy_pickle_format_loads_with_weights_only(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"state_dict": {"a": torch.arange(3.0)}}, path, _use_new_zipfile_serialization=False)
    out = read_state_dict(path, trust_pickle=True)
    assert torch.equal(out["a"], torch.arange(3.0))


def test_untrusted_pickle_is_refused_with_the_given_message(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"a": T}, path)
    with pytest.raises(CheckpointError, match="refused: convert it"):
        read_state_dict(path, trust_pickle=False, refusal="refused: convert it")


def test_pickle_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_pickle_checkpoint(tmp_path / "none.pt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_pickle_checkpoint(empty)
    legacy = tmp_path / "legacy.pt"
    torch.save({"a": torch.ones(100)}, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_pickle_checkpoint(legacy)


class Buffered(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.register_buffer("mean", torch.tensor([0.1, 0.2]), persistent=False)


def test_drop_redundant_buffers_only_for_equal_non_persistent_buffers():
    model = Buffered()
    state = {**model.state_dict(), "mean": torch.tensor([0.1, 0.2])}
    assert set(drop_redundant_buffers(model, state, source="f")) == {"lin.weight", "lin.bias"}
    unknown = {**model.state_dict(), "extra": T}
    assert "extra" in drop_redundant_buffers(model, unknown, source="f")  # left for the strict load to name
    expected = r"f stores mean = \[0\.5, 0\.2\], but .* normalizes with \[0\.1, 0\.2\]"
    with pytest.raises(CheckpointError, match=expected):
        drop_redundant_buffers(model, {**state, "mean": torch.tensor([0.5, 0.2])}, source="f")


def test_refused_global_is_parsed_from_torchs_message():
    import pickle

    from advdistill_plugins.teachers.files import refused_global

    text = ("Weights only load failed. ...\n\tWeightsUnpickler error: Unsupported global: GLOBAL numpy.random.seed "
            "was not an allowed global by default. Please use ...\n\nCheck the documentation of torch.load ...")
    assert refused_global(pickle.UnpicklingError(text)) == "numpy.random.seed"
    blocked = "Trying to load unsupported GLOBAL posix.system whose module posix is blocked."
    assert refused_global(pickle.UnpicklingError(blocked)) == "posix.system"
    assert refused_global(pickle.UnpicklingError("Unsupported global: GLOBAL exec was not")) == "builtins.exec"
