"""Every registered teacher loader keeps the teacher contract (advdistill.testing.check_teacher_loader):
frozen, eval mode, (B, C) logits, on fabricated files."""

import pytest
from rb_fabricate import TINY_WRN, layout_file, random_state, save_safetensors

import advdistill as ad
from advdistill.engine.checkpoint import save_weights
from advdistill.testing import check_teacher_loader


def robustbench(tmp_path):
    reference = ad.create_model("wideresnet", num_classes=10, depth=10, widen_factor=1)
    save_safetensors(layout_file(tmp_path, "Tiny2024Robust_WRN-10-1", suffix=".safetensors"),
                     random_state(reference, seed=0))
    return ad.build("teacher", "robustbench", name="Tiny2024Robust_WRN-10-1", model_dir=str(tmp_path),
                    model=dict(TINY_WRN))


def checkpoint(tmp_path):
    model = ad.create_model("small_cnn", num_classes=10, widths=[4], hidden=8)
    save_weights(tmp_path / "loose.safetensors", model)
    return ad.build("teacher", "checkpoint", path=str(tmp_path / "loose.safetensors"),
                    model={"kind": "small_cnn", "widths": [4], "hidden": 8})


LOADERS = {"robustbench": robustbench, "checkpoint": checkpoint}


def test_every_teacher_loader_is_covered():
    names = {i.name for i in ad.list_components("teacher") if i.package == "advdistill" and not i.alias_of}
    assert names == set(LOADERS)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_teacher_contract(name, tmp_path):
    teacher = check_teacher_loader(LOADERS[name](tmp_path), num_classes=10, in_chans=3, image_size=32)
    assert teacher is not None
