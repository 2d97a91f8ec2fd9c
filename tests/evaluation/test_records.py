"""per_example.safetensors: the format, merging later evaluations, and pairing two runs."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from advdistill.errors import DataError
from advdistill.evaluation.records import (
    paired_outcomes,
    read_per_example,
    read_per_example_file,
    split_fingerprint,
    write_per_example,
)


def flags(*bits):
    return torch.tensor(bits, dtype=torch.bool)


def write(out, records, *, n=4, dataset="toy", sha="abc", weights=None, index=None):
    index = torch.arange(n) if index is None else index
    weights = weights if weights is not None else {name: f"{name}-w" for name in records}
    return write_per_example(out, records, index=index, dataset=dataset, recipe_hash="h", test_sha256=sha,
                             n_test=10, weights=weights)


def test_the_file_follows_the_shared_format(tmp_path):
    path = write(tmp_path, {"last": {"clean": flags(1, 0, 1, 1), "pgd20": flags(0, 0, 1, 0)}})
    assert path == tmp_path / "per_example.safetensors"
    tensors = load_file(str(path))
    assert set(tensors) == {"last/clean", "last/pgd20", "index"}
    assert tensors["last/clean"].dtype == torch.uint8 and tensors["last/clean"].tolist() == [1, 0, 1, 1]
    assert tensors["index"].dtype == torch.int64 and tensors["index"].tolist() == [0, 1, 2, 3]
    with safe_open(str(path), "pt") as fh:
        meta = {k: json.loads(v) for k, v in fh.metadata().items()}
    assert meta == {"dataset": "toy", "split": "test", "n_examples": 4, "n_test": 10, "test_sha256": "abc",
                    "recipe_hash": "h", "checkpoints": ["last"], "weights": {"last": "last-w"}}
    records = read_per_example(tmp_path)
    assert records["last"]["pgd20"].dtype == torch.bool and records["last"]["pgd20"].tolist() == [0, 0, 1, 0]


def test_a_later_evaluation_merges_into_the_file(tmp_path):
    write(tmp_path, {"last": {"clean": flags(1, 1, 1, 1), "pgd20": flags(0, 0, 0, 0)}})
    # another evaluation of the same weights: its tensors replace those of the same name
    write(tmp_path, {"last": {"pgd20": flags(1, 0, 0, 0), "autoattack": flags(0, 0, 0, 1)}})
    write(tmp_path, {"best": {"clean": flags(0, 1, 0, 1)}}, weights={"best": "best-w"})
    found = read_per_example_file(tmp_path)
    assert {k: v.int().tolist() for k, v in found.records["last"].items()} == {
        "clean": [1, 1, 1, 1], "pgd20": [1, 0, 0, 0], "autoattack": [0, 0, 0, 1]}
    assert found.records["best"]["clean"].int().tolist() == [0, 1, 0, 1]
    assert found.metadata["checkpoints"] == ["best", "last"]
    assert found.metadata["weights"] == {"best": "best-w", "last": "last-w"}


def test_new_weights_under_a_label_drop_its_old_results(tmp_path):
    write(tmp_path, {"last": {"clean": flags(1, 1, 1, 1), "pgd20": flags(0, 0, 0, 0)},
                     "best": {"clean": flags(1, 0, 0, 0)}})
    # training went on: "last" is other weights now, evaluated with clean only
    write(tmp_path, {"last": {"clean": flags(0, 0, 1, 1)}}, weights={"last": "newer"})
    found = read_per_example_file(tmp_path)
    assert set(found.records["last"]) == {"clean"} and found.records["last"]["clean"].int().tolist() == [0, 0, 1, 1]
    assert found.records["best"]["clean"].int().tolist() == [1, 0, 0, 0]
    assert found.metadata["weights"] == {"best": "best-w", "last": "newer"}


@pytest.mark.parametrize("change", [dict(dataset="other"), dict(sha="def"), dict(n=2)])
def test_records_on_other_test_images_replace_the_file(tmp_path, change):
    write(tmp_path, {"last": {"clean": flags(1, 1, 1, 1)}, "best": {"clean": flags(1, 0, 0, 0)}})
    n = change.get("n", 4)
    write(tmp_path, {"last": {"pgd20": torch.ones(n, dtype=torch.bool)}}, **change)
    found = read_per_example_file(tmp_path)
    assert list(found.records) == ["last"] and set(found.records["last"]) == {"pgd20"}


def test_bad_records_and_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"last/clean: \(3,\) flags for 4 images"):
        write(tmp_path, {"last": {"clean": flags(1, 0, 1)}})
    with pytest.raises(DataError, match="not found: evaluate the run"):
        read_per_example(tmp_path / "nothing")
    (tmp_path / "per_example.safetensors").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable per-example file"):
        read_per_example(tmp_path)


def test_the_fingerprint_depends_on_images_and_labels():
    x = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    y = torch.tensor([0, 1, 2])
    assert split_fingerprint(x, y) == split_fingerprint(x.clone(), y.clone())
    assert split_fingerprint(x, y) != split_fingerprint(x, torch.tensor([0, 1, 1]))
    x2 = x.clone()
    x2[2, 0, 1, 1] = 1
    assert split_fingerprint(x, y) != split_fingerprint(x2, y)


def test_pairing_counts_the_discordant_images_on_the_shared_indices(tmp_path):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    # a evaluated images 0..5, b the first four only (e.g. --limit 4)
    write(a_dir, {"last": {"clean": flags(1, 1, 0, 0, 1, 1), "pgd20": flags(1, 0, 0, 0, 1, 0)}}, n=6)
    write(b_dir, {"best": {"clean": flags(1, 0, 1, 1), "autoattack": flags(0, 0, 0, 0)}}, n=4)
    a, b = read_per_example_file(a_dir), read_per_example_file(b_dir)
    outcomes = paired_outcomes(a, "last", b, "best")
    assert list(outcomes) == ["clean"]  # the only metric both recorded
    o = outcomes["clean"]
    # images 0..3: a = 1 1 0 0, b = 1 0 1 1 → only a: image 1; only b: images 2 and 3
    assert (o.n, o.correct_a, o.correct_b, o.only_a, o.only_b) == (4, 2, 3, 1, 2)
    assert o.difference == 25.0 and o.p_value == 1.0


def test_pairing_uses_positions_not_order(tmp_path):
    write(tmp_path / "a", {"last": {"clean": flags(1, 0, 0)}}, n=3, index=torch.tensor([5, 7, 9]))
    write(tmp_path / "b", {"last": {"clean": flags(0, 1)}}, n=2, index=torch.tensor([9, 5]))
    o = paired_outcomes(read_per_example_file(tmp_path / "a"), "last", read_per_example_file(tmp_path / "b"),
                        "last")["clean"]
    # shared images 5 and 9: a = (1, 0), b = (1, 0)
    assert (o.n, o.only_a, o.only_b, o.correct_a) == (2, 0, 0, 1)


def test_different_test_sets_are_refused(tmp_path):
    write(tmp_path / "a", {"last": {"clean": flags(1, 0, 1, 1)}})
    write(tmp_path / "b", {"last": {"clean": flags(1, 0, 1, 1)}}, dataset="other")
    write(tmp_path / "c", {"last": {"clean": flags(1, 0, 1, 1)}}, sha="other images")
    a, b, c = (read_per_example_file(tmp_path / name) for name in "abc")
    with pytest.raises(DataError, match="different data sets \\(toy and other\\)"):
        paired_outcomes(a, "last", b, "last")
    with pytest.raises(DataError, match="different toy test images"):
        paired_outcomes(a, "last", c, "last")
    with pytest.raises(DataError, match="no per-example records of checkpoint 'best'"):
        paired_outcomes(a, "best", a, "last")
