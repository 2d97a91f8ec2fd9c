"""Atomic writes give files the permissions a plain open() would: the umask's, or the replaced file's."""

import os
import stat

import pytest

import advdistill as ad
from advdistill.io import atomic_write, atomic_write_text


@pytest.fixture
def umask():
    """``umask(value)`` sets the process umask for the test; the old one comes back afterwards."""
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_a_new_file_gets_0666_minus_the_umask_like_open(tmp_path, umask, mask):
    umask(mask)
    atomic_write_text(tmp_path / "a.json", "{}")
    (tmp_path / "b.json").write_text("{}")  # the reference: a plain open()
    assert mode(tmp_path / "a.json") == 0o666 & ~mask == mode(tmp_path / "b.json")


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "report.json"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new" and mode(target) == 0o600
    os.chmod(target, 0o664)
    atomic_write_text(target, "newer")
    assert mode(target) == 0o664


def test_no_temporary_file_is_left_behind_when_the_writer_fails(tmp_path):
    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.txt", fail)
    assert list(tmp_path.iterdir()) == []


def test_every_file_of_a_run_is_as_readable_as_metrics_jsonl(tiny_recipe, tmp_path, umask):
    umask(0o022)
    run = ad.train(tiny_recipe(), tmp_path / "run")
    files = [p for p in run.rglob("*") if p.is_file() and p.name != "advdistill.lock"]
    names = {p.name for p in files}
    assert {"recipe.json", "metrics.jsonl", "report.json", "report.md", "per_example.safetensors",
            "last.safetensors", "last.state.safetensors"} <= names
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o644) for p in files}
