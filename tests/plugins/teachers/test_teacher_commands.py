import hashlib
import json

import attrs
import torch
from rb_fabricate import TINY_WRN, layout_file, random_state, save_robustbench_pt, save_safetensors
from safetensors.torch import load_file

import advdistill as ad
from advdistill.engine.checkpoint import read_metadata
from advdistill_plugins.teachers.commands import sidecar_path
from advdistill_plugins.teachers.robustbench import KNOWN


def tiny_state(seed=0, num_classes=10):
    model = ad.create_model("wideresnet", depth=10, widen_factor=1, num_classes=num_classes)
    return random_state(model, seed)


def test_convert_writes_safetensors_and_a_sidecar(tmp_path, cli_runner):
    state = tiny_state(num_classes=100)
    src = save_robustbench_pt(tmp_path / "ckpt.pt", state, epoch=7)
    dst = tmp_path / "out" / "tiny.safetensors"
    result = cli_runner("teacher", "convert", str(src), str(dst), "--arch", "wideresnet",
                        "--param", "depth=10", "--param", "widen_factor=1", "--dataset", "cifar100")
    converted = load_file(str(dst))
    assert set(converted) == set(state) and all(torch.equal(converted[k], state[k]) for k in state)
    sidecar = json.loads(dst.with_suffix(".json").read_text())
    assert sidecar["arch"] == "wideresnet" and sidecar["dataset"] == "cifar100"
    assert sidecar["model"] == {"kind": "wideresnet", "depth": 10, "widen_factor": 1}
    assert sidecar["threat_model"] == "Linf" and sidecar["num_classes"] == 100
    assert sidecar["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert sidecar["sha256"] == hashlib.sha256(dst.read_bytes()).hexdigest()
    assert read_metadata(dst)["source_sha256"] == sidecar["source_sha256"]
    assert f"wrote {dst}" in result.output and not list(dst.parent.glob(".*.tmp"))


def test_convert_of_a_robustbench_name_round_trips_the_weights(tmp_path, cli_runner, monkeypatch):
    # a RobustBench name picks its architecture from the table; shrink it to keep the test fast
    entry = KNOWN["cifar10", "Linf", "Chen2021LTD_WRN34_10"]
    monkeypatch.setitem(KNOWN, ("cifar10", "Linf", entry.name), attrs.evolve(entry, model=TINY_WRN))
    state = tiny_state()
    src = save_robustbench_pt(layout_file(tmp_path, entry.name), state)  # {"state_dict": {"module.…"}}
    dst = src.with_suffix(".safetensors")
    result = cli_runner("teacher", "convert", str(src), str(dst), "--arch", entry.name)
    assert 'name = "Chen2021LTD_WRN34_10"' in result.output
    converted = load_file(str(dst))
    assert set(converted) == set(state)
    assert all(torch.equal(converted[k], state[k]) for k in state)
    assert json.loads(dst.with_suffix(".json").read_text())["robustbench_name"] == entry.name
    src.unlink()  # the loader now reads the converted file, no pickle involved
    teacher = ad.load_teacher(entry.name, model_dir=tmp_path)
    assert all(torch.equal(teacher.state_dict()[k], state[k]) for k in state)


def test_convert_errors(tmp_path, cli_runner):
    src = save_robustbench_pt(tmp_path / "ckpt.pt", tiny_state())
    args = ["teacher", "convert", str(src)]
    out = cli_runner(*args, str(tmp_path / "x.pt"), "--arch", "wideresnet", exit_code=2).output
    assert "DST must end in .safetensors" in out
    out = cli_runner(*args, str(tmp_path / "x.safetensors"), "--arch", "wideresnet34", exit_code=2).output
    assert "neither a RobustBench model known for cifar10/Linf" in out and "Did you mean 'wideresnet'" in out
    # the default WRN-28-10 is not what the file holds: nothing is written
    out = cli_runner(*args, str(tmp_path / "x.safetensors"), "--arch", "wideresnet", exit_code=2).output
    assert "does not match the model WideResNet: missing keys" in out and "shape mismatches" in out
    assert not (tmp_path / "x.safetensors").exists() and not (tmp_path / "x.json").exists()
    out = cli_runner(*args, str(tmp_path / "x.safetensors"), "--arch", "Chen2021LTD_WRN34_10",
                     "--param", "depth=10", exit_code=2).output
    assert "--param is for model kinds" in out
    existing = save_safetensors(tmp_path / "y.safetensors", {"a": torch.zeros(1)})
    out = cli_runner(*args, str(existing), "--arch", "wideresnet", exit_code=2).output
    assert "exists; pass --force" in out
    truncated = tmp_path / "t.pt"
    truncated.write_bytes(src.read_bytes()[:1000])
    out = cli_runner("teacher", "convert", str(truncated), str(tmp_path / "t.safetensors"), "--arch",
                     "wideresnet", "--param", "depth=10", "--param", "widen_factor=1", exit_code=2).output
    assert "truncated or corrupt" in out and "Traceback" not in out


def test_list_shows_names_numbers_and_expected_paths(tmp_path, cli_runner):
    out = cli_runner("teacher", "list", "--model-dir", str(tmp_path)).output
    for entry in KNOWN.values():
        assert entry.name in out
    assert "85.21 / 60.89 / 56.94" in out and "73.85 / 39.18" in out  # paper Table 1, leaderboard
    expected = tmp_path / "cifar100" / "Linf" / "Wang2023Better_WRN-28-10.safetensors"
    assert f"missing: {expected}" in out
    save_safetensors(layout_file(tmp_path, "Wang2023Better_WRN-28-10", "cifar100", ".safetensors"),
                     {"a": torch.zeros(1)})
    rows = json.loads(cli_runner("teacher", "list", "--model-dir", str(tmp_path), "--dataset", "cifar100",
                                 "--json").output)
    assert {r["dataset"] for r in rows} == {"cifar100"} and len(rows) == 3
    bdm = next(r for r in rows if r["name"] == "Wang2023Better_WRN-28-10")
    assert bdm["status"] == "safetensors" and bdm["path"] == str(expected)
    assert bdm["paper"] == {"clean": 72.58, "pgd20": 44.24, "autoattack": 38.83}
    assert bdm["model"] == {"kind": "dm_wrn_28_10", "dataset": "cifar100"}


def test_teacher_command_is_contributed_by_the_plugin(cli_runner):
    assert any(i.name == "teacher" and i.kind == "command" for i in ad.list_components("command"))
    out = cli_runner("teacher", "--help").output
    assert "convert" in out and "list" in out


def test_convert_reads_name_dataset_and_threat_model_from_a_robustbench_path(tmp_path, cli_runner, monkeypatch):
    entry = KNOWN["cifar100", "Linf", "Chen2021LTD_WRN34_10"]
    monkeypatch.setitem(KNOWN, ("cifar100", "Linf", entry.name),
                        attrs.evolve(entry, model={**TINY_WRN, "sub_block1": True}))
    state = random_state(ad.build("model", "wideresnet", depth=10, widen_factor=1, sub_block1=True)
                         .build(num_classes=100, in_chans=3), seed=3)
    src = save_robustbench_pt(layout_file(tmp_path, entry.name, dataset="cifar100"), state)
    dst = src.with_suffix(".safetensors")
    result = cli_runner("teacher", "convert", str(src), str(dst))  # no --arch, no --dataset
    sidecar = json.loads(sidecar_path(dst).read_text())
    assert sidecar["arch"] == entry.name and sidecar["dataset"] == "cifar100" and sidecar["num_classes"] == 100
    assert f"wrote {tmp_path / 'cifar100' / 'Linf' / (entry.name + '.json')}" in result.output
    assert all(torch.equal(load_file(str(dst))[k], state[k]) for k in state)


def test_convert_without_arch_outside_the_layout_says_what_to_give(tmp_path, cli_runner):
    src = save_robustbench_pt(tmp_path / "ckpt.pt", tiny_state())
    out = cli_runner("teacher", "convert", str(src), str(tmp_path / "x.safetensors"), exit_code=2).output
    assert "--arch is needed: 'ckpt' is not a RobustBench model known here" in out
    assert not (tmp_path / "x.safetensors").exists()


def test_a_wrong_dataset_is_named_with_the_right_one(tmp_path, cli_runner):
    src = save_robustbench_pt(tmp_path / "ckpt.pt", tiny_state(num_classes=100))
    out = cli_runner("teacher", "convert", str(src), str(tmp_path / "x.safetensors"), "--arch", "wideresnet",
                     "--param", "depth=10", "--param", "widen_factor=1", "--dataset", "cifar10", exit_code=2).output
    assert "Its classifier has 100 outputs, so it is a cifar100 model, not a cifar10 one (10 classes): " \
           "pass --dataset cifar100." in out
    assert "recipe" not in out


def test_the_docs_and_help_name_the_sidecar_that_is_written(cli_runner):
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[3] / "docs" / "models-and-teachers.md").read_text()
    example = Path("models/cifar100/Linf/Wang2023Better_WRN-28-10.safetensors")
    assert f"advdistill teacher convert models/cifar100/Linf/Wang2023Better_WRN-28-10.pt \\\n    {example}" in docs
    assert f"`{sidecar_path(example)}`" in docs and "DST.json" not in docs
    help_text = cli_runner("teacher", "convert", "--help").output
    assert "DST.json" not in help_text and "NAME.safetensors -> NAME.json" in help_text
