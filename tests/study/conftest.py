"""A tiny study on synthetic data: a teacher setup run, two student cells, seeds 0 and 1."""

from __future__ import annotations

import copy

import pytest

from advdistill.testing import TINY_RECIPE, to_toml

STUDENT = {
    "extends": "teacher.toml",
    "teacher": {"kind": "checkpoint", "path": "set-by-the-study.safetensors"},
    "attack": {"kind": "rslad_kl", "steps": 2},
    "objective": {"kind": "rslad"},
}

STUDY = """\
schema = 1
name = "tiny"
seeds = [0, 1]
pairs = [["rslad", "rslad+igdm"]]
metrics = ["clean", "pgd20", "gd", "gc"]
set = ['teacher.path="{runs.teacher}/checkpoints/last.safetensors"']

[setup.teacher]
recipe = "teacher.toml"

[cells.rslad]
recipe = "student.toml"

[cells."rslad+igdm"]
recipe = "student.toml"
set = { aux.igdm = { kind = "igdm", alpha = 2.0 } }
"""


@pytest.fixture
def study_dir(tmp_path):
    """A folder with teacher.toml, student.toml and study.toml (``write`` adds or replaces files)."""
    folder = tmp_path / "study"
    folder.mkdir()
    teacher = copy.deepcopy(TINY_RECIPE)
    teacher["eval"]["metrics"] = {"clean": {"kind": "clean"}, "pgd20": {"kind": "pgd", "steps": 20}}
    (folder / "teacher.toml").write_text(to_toml(teacher))
    student = to_toml({"schema": 1, **STUDENT})
    student += '\n[eval.metrics.grad_alignment]\nkind = "grad_alignment"\n'
    (folder / "student.toml").write_text(student)
    (folder / "study.toml").write_text(STUDY)
    return folder
