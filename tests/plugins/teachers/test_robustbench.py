import hashlib
import json

import pytest
import torch
from rb_fabricate import (
    TINY_DM,
    TINY_WRN,
    layout_file,
    random_state,
    save_robustbench_pt,
    save_safetensors,
)

import advdistill as ad
from advdistill.errors import CheckpointError, RecipeError
from advdistill_plugins.models.common import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from advdistill_plugins.models.dm_wide_resnet import DMWideResNet
from advdistill_plugins.models.wide_resnet import WideResNet
from advdistill_plugins.teachers.robustbench import KNOWN

TINY = "Tiny2024Robust_WRN-10-1"  # a name outside the table: its architecture is given as `model`


def direct(model_table, num_classes=10):
    """The architecture constructed directly from its class (not through the registry or timm)."""
    params = {k: v for k, v in model_table.items() if k != "kind"}
    if model_table["kind"] in ("wideresnet", "wrn_34_10"):
        params.setdefault("depth", 34)
        params.setdefault("widen_factor", 10)
        return WideResNet(num_classes=num_classes, **params)
    dataset = params.pop("dataset", "cifar10" if num_classes == 10 else "cifar100")
    mean, std = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "cifar100": (CIFAR100_MEAN, CIFAR100_STD)}[dataset]
    params.setdefault("depth", 28)
    params.setdefault("width", 10)
    return DMWideResNet(num_classes=num_classes, mean=mean, std=std, activation="silu", **params)


def reference_and_state(model_table, num_classes=10, seed=0):
    reference = direct(model_table, num_classes)
    state = random_state(reference, seed)
    reference.load_state_dict(state)
    return reference.eval(), state


def assert_same_outputs(teacher, reference):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = teacher(x)
        assert torch.isfinite(out).all()
        assert torch.equal(out, reference(x))  # bit for bit
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def tiny_teacher(tmp_path, name=TINY, model=TINY_WRN, **params):
    return ad.build("teacher", "robustbench", name=name, model_dir=str(tmp_path), model=dict(model), **params)


# -- full-size RobustBench checkpoints -------------------------------------------------------

def test_ltd_cifar100_pt_with_robustbench_wrappers_loads_bit_for_bit(tmp_path):
    entry = KNOWN[("cifar100", "Linf", "Chen2021LTD_WRN34_10")]
    reference, state = reference_and_state(entry.model, 100)
    assert any(k.startswith("sub_block1.") for k in state)  # the unused block must load strictly too
    path = layout_file(tmp_path, entry.name, "cifar100")
    save_robustbench_pt(path, state, epoch=99, best_acc=0.64)
    teacher = ad.load_teacher(entry.name, model_dir=tmp_path, dataset="cifar100", trust_pickle=True)
    assert_same_outputs(teacher, reference)


def test_bdm_cifar10_safetensors_loads_bit_for_bit(tmp_path):
    entry = KNOWN[("cifar10", "Linf", "Wang2023Better_WRN-28-10")]
    reference, state = reference_and_state(entry.model, 10)
    save_safetensors(layout_file(tmp_path, entry.name, "cifar10", ".safetensors"), state)
    teacher = ad.build("teacher", "robustbench", name=entry.name, model_dir=str(tmp_path)).load(
        num_classes=10, in_chans=3
    )
    assert_same_outputs(teacher, reference)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(KNOWN), ids=lambda k: f"{k[0]}-{k[2]}")
@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_every_known_teacher_loads_bit_for_bit(tmp_path, key, fmt):
    entry = KNOWN[key]
    reference, state = reference_and_state(entry.model, entry.num_classes, seed=len(entry.name))
    if fmt == "pt":
        save_robustbench_pt(layout_file(tmp_path, entry.name, entry.dataset), state)
    else:
        save_safetensors(layout_file(tmp_path, entry.name, entry.dataset, ".safetensors"), state)
    teacher = ad.load_teacher(entry.name, model_dir=tmp_path, dataset=entry.dataset, trust_pickle=fmt == "pt")
    assert_same_outputs(teacher, reference)


def test_known_architectures_have_robustbenchs_keys_and_sizes():
    # every table entry builds, and the directly constructed RobustBench class has the same keys/shapes
    sizes = {}
    for (dataset, _, name), entry in KNOWN.items():
        loader = ad.build("teacher", "robustbench", name=name, dataset=dataset)
        arch = loader.architecture()
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            built = ad.create_model(arch.pop("kind"), num_classes=entry.num_classes, **arch)
            ref = direct(entry.model, entry.num_classes)
        assert {k: v.shape for k, v in built.state_dict().items()} == {
            k: v.shape for k, v in ref.state_dict().items()}, name
        sizes[dataset, name] = sum(p.numel() for p in built.parameters())
    assert sizes["cifar10", "Chen2021LTD_WRN34_10"] == 46_160_474
    assert sizes["cifar10", "Wang2023Better_WRN-28-10"] == sizes["cifar10", "Cui2023Decoupled_WRN-28-10"] \
        == 36_479_194


def test_table_holds_the_paper_numbers():
    # IGDM paper Table 1 (clean, PGD-20, AA) and METHODS.md's RobustBench leaderboard (clean, AA)
    assert KNOWN["cifar10", "Linf", "Chen2021LTD_WRN34_10"].paper == (85.21, 60.89, 56.94)
    assert KNOWN["cifar100", "Linf", "Cui2023Decoupled_WRN-28-10"].paper == (73.80, 44.14, 39.18)
    assert KNOWN["cifar100", "Linf", "Cui2023Decoupled_WRN-28-10"].leaderboard == (73.85, 39.18)
    assert KNOWN["cifar100", "Linf", "Wang2023Better_WRN-28-10"].model["dataset"] == "cifar100"
    assert KNOWN["cifar100", "Linf", "Chen2021LTD_WRN34_10"].model["sub_block1"] is True
    assert KNOWN["cifar10", "Linf", "Chen2021LTD_WRN34_10"].model.get("sub_block1", False) is False


# -- files, formats and refusals (small architecture) ----------------------------------------

@pytest.mark.parametrize(("wrapper", "prefix"), [
    ("state_dict", "module."),
    ("model_state_dict", "module.model."),
    ("", "model."),
    ("", ""),
])
def test_trusted_pt_wrappers_and_prefixes_are_unwrapped(tmp_path, wrapper, prefix):
    reference, state = reference_and_state(TINY_WRN)
    save_robustbench_pt(layout_file(tmp_path, TINY), state, wrapper=wrapper, prefix=prefix)
    teacher = tiny_teacher(tmp_path, trust_pickle=True).load(num_classes=10, in_chans=3)
    assert_same_outputs(teacher, reference)


class TrainingArgs:  # an object of the saving code's own class: never unpickled, even when trusted
    lr = 0.1


def test_trusted_pt_with_a_class_of_the_saving_code_is_refused_naming_it(tmp_path):
    _, state = reference_and_state(TINY_WRN)
    pt = save_robustbench_pt(layout_file(tmp_path, TINY), state, args=TrainingArgs())
    with pytest.raises(CheckpointError) as err:
        tiny_teacher(tmp_path, trust_pickle=True).load(num_classes=10, in_chans=3)
    message = str(err.value)
    assert "asks the unpickler for 'test_robustbench.TrainingArgs'" in message
    assert "torch.save(model.state_dict()" in message and f"Put that file at {pt}" in message


def test_pt_is_refused_without_trust_and_the_error_says_how_to_convert(tmp_path):
    _, state = reference_and_state(TINY_WRN)
    pt = save_robustbench_pt(layout_file(tmp_path, TINY), state)
    with pytest.raises(CheckpointError) as err:
        tiny_teacher(tmp_path).load(num_classes=10, in_chans=3)
    message = str(err.value)
    assert str(pt) in message and "pickle" in message and "arbitrary code" in message
    assert "trust_pickle = true" in message
    assert (f"advdistill teacher convert {pt} {pt.with_suffix('.safetensors')} --arch wideresnet "
            "--param depth=10 --param widen_factor=1 --dataset cifar10") in message


def test_safetensors_beside_the_pt_is_preferred(tmp_path):
    reference, state = reference_and_state(TINY_WRN)
    other = random_state(reference, seed=9)
    save_robustbench_pt(layout_file(tmp_path, TINY), other)  # would load different weights
    save_safetensors(layout_file(tmp_path, TINY, suffix=".safetensors"), state)
    assert_same_outputs(tiny_teacher(tmp_path).load(num_classes=10, in_chans=3), reference)


def test_missing_file_names_the_exact_path_and_the_model(tmp_path):
    name = "Chen2021LTD_WRN34_10"
    with pytest.raises(CheckpointError) as err:
        ad.load_teacher(name, model_dir=tmp_path / "zoo", dataset="cifar100")
    message = str(err.value)
    expected = (tmp_path / "zoo" / "cifar100" / "Linf" / f"{name}.safetensors").resolve()
    assert f"expected {expected}" in message
    assert f"RobustBench model {name!r} (cifar100, Linf) not found" in message
    assert f"load_model('{name}', model_dir='models', dataset='cifar100', threat_model='Linf')" in message
    assert "advdistill teacher convert" in message and f"--arch {name} --dataset cifar100" in message


def test_model_dir_expands_home_and_environment_variables(tmp_path, monkeypatch):
    reference, state = reference_and_state(TINY_WRN)
    save_safetensors(layout_file(tmp_path / "zoo", TINY, suffix=".safetensors"), state)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ZOO", "zoo")
    loader = ad.build("teacher", "robustbench", name=TINY, model_dir="~/$ZOO", model=dict(TINY_WRN))
    assert_same_outputs(loader.load(num_classes=10, in_chans=3), reference)


def test_explicit_path_overrides_the_layout(tmp_path):
    reference, state = reference_and_state(TINY_WRN)
    path = save_safetensors(tmp_path / "elsewhere.safetensors", state)
    assert_same_outputs(tiny_teacher(tmp_path / "empty", path=str(path)).load(num_classes=10, in_chans=3),
                        reference)
    with pytest.raises(CheckpointError, match=r"no file .*nope\.safetensors"):
        tiny_teacher(tmp_path, path=str(tmp_path / "nope.safetensors")).load(num_classes=10, in_chans=3)
    pt = save_robustbench_pt(tmp_path / "elsewhere.pth", state)
    with pytest.raises(CheckpointError, match="trust_pickle = true"):
        tiny_teacher(tmp_path, path=str(pt)).load(num_classes=10, in_chans=3)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_files_are_clear_errors(tmp_path, suffix):
    _, state = reference_and_state(TINY_WRN)
    path = layout_file(tmp_path, TINY, suffix=suffix)
    (save_robustbench_pt if suffix == ".pt" else save_safetensors)(path, state)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"(truncated or corrupt\?)"):
        tiny_teacher(tmp_path, trust_pickle=True).load(num_classes=10, in_chans=3)


def test_garbage_pt_never_reaches_the_unpickler(tmp_path):
    layout_file(tmp_path, TINY).write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(CheckpointError, match="is not a PyTorch checkpoint"):
        tiny_teacher(tmp_path, trust_pickle=True).load(num_classes=10, in_chans=3)


def test_checkpoint_of_another_architecture_is_a_readable_mismatch(tmp_path):
    _, state = reference_and_state(TINY_WRN)  # widen_factor 1
    save_safetensors(layout_file(tmp_path, TINY, suffix=".safetensors"), state)
    wider = {**TINY_WRN, "widen_factor": 2}
    shapes = r"shape mismatches: .*file \(16, 16, 3, 3\) vs model \(32, 16, 3, 3\)"
    with pytest.raises(CheckpointError, match=shapes):
        tiny_teacher(tmp_path, model=wider).load(num_classes=10, in_chans=3)
    with pytest.raises(CheckpointError, match=r"missing keys: sub_block1\.layer\.0"):
        tiny_teacher(tmp_path, model={**TINY_WRN, "sub_block1": True}).load(num_classes=10, in_chans=3)
    with pytest.raises(CheckpointError, match=f"{TINY}, cifar10.*DMWideResNet: missing keys: batchnorm.bias.*"
                                              "unexpected keys: block1.layer.0.bn1.bias"):
        tiny_teacher(tmp_path, model=TINY_DM).load(num_classes=10, in_chans=3)


def test_sha256_is_verified(tmp_path):
    reference, state = reference_and_state(TINY_WRN)
    path = save_safetensors(layout_file(tmp_path, TINY, suffix=".safetensors"), state)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert_same_outputs(tiny_teacher(tmp_path, sha256=digest.upper()).load(num_classes=10, in_chans=3),
                        reference)
    wrong = "0" * 64
    with pytest.raises(CheckpointError, match=f"has SHA-256 {digest}, but \\[teacher\\] sha256 = '{wrong}'"):
        tiny_teacher(tmp_path, sha256=wrong).load(num_classes=10, in_chans=3)
    with pytest.raises(RecipeError, match="64 hexadecimal digits"):
        tiny_teacher(tmp_path, sha256="abc")


def test_sha256_of_the_original_pt_accepts_the_converted_file(tmp_path, cli_runner):
    reference, state = reference_and_state(TINY_WRN)
    pt = save_robustbench_pt(layout_file(tmp_path, TINY), state)
    pt_digest = hashlib.sha256(pt.read_bytes()).hexdigest()
    cli_runner("teacher", "convert", str(pt), str(pt.with_suffix(".safetensors")), "--arch", "wideresnet",
               "--param", "depth=10", "--param", "widen_factor=1")
    pt.unlink()
    assert_same_outputs(tiny_teacher(tmp_path, sha256=pt_digest).load(num_classes=10, in_chans=3), reference)


def test_old_robustbench_mean_std_entries_are_checked_then_ignored(tmp_path):
    # early RobustBench versions stored DMWideResNet's mean/std with the weights
    reference, state = reference_and_state(TINY_DM)
    stats = {"mean": torch.tensor(CIFAR10_MEAN).view(3, 1, 1), "std": torch.tensor(CIFAR10_STD).view(3, 1, 1)}
    path = layout_file(tmp_path, TINY, suffix=".safetensors")
    save_safetensors(path, {**state, **stats})
    assert_same_outputs(tiny_teacher(tmp_path, model=TINY_DM).load(num_classes=10, in_chans=3), reference)
    save_safetensors(path, {**state, **stats, "mean": torch.tensor(CIFAR100_MEAN).view(3, 1, 1)})
    with pytest.raises(CheckpointError, match="trained with another input normalization"):
        tiny_teacher(tmp_path, model=TINY_DM).load(num_classes=10, in_chans=3)


# -- configuration ---------------------------------------------------------------------------

def test_unknown_names_are_rejected_when_the_recipe_is_read():
    unknown = (r"Unknown RobustBench model 'Chen2021LTD_WRN34_1' for cifar10/Linf\. "
               r"Did you mean 'Chen2021LTD_WRN34_10'")
    with pytest.raises(RecipeError, match=unknown):
        ad.build("teacher", "robustbench", name="Chen2021LTD_WRN34_1")
    with pytest.raises(RecipeError, match="known here for cifar10/Linf, not for cifar100/Linf"):
        ad.build("teacher", "robustbench", name="Chen2021LTD_WRN34_20", dataset="cifar100")
    with pytest.raises(RecipeError, match="'dataset' must be one of 'cifar10', 'cifar100'"):
        ad.build("teacher", "robustbench", name="Chen2021LTD_WRN34_10", dataset="svhn")
    with pytest.raises(RecipeError, match="needs kind"):
        ad.build("teacher", "robustbench", name=TINY, model={"depth": 10})


def test_data_set_must_match_the_teacher(tmp_path):
    loader = ad.build("teacher", "robustbench", name="Wang2023Better_WRN-28-10", dataset="cifar100",
                      model_dir=str(tmp_path))
    with pytest.raises(RecipeError, match=r"a cifar100 model \(100 classes, RGB\), but the data set has 10"):
        loader.load(num_classes=10, in_chans=3)


def test_recipe_with_a_robustbench_teacher(tiny_recipe, tmp_path):
    bad = tiny_recipe(teacher={"kind": "robustbench", "name": "Wang2023Better_WRN-28-1"})
    with pytest.raises(RecipeError, match=r"\[teacher\].*Did you mean 'Wang2023Better_WRN-28-10'"):
        ad.load_recipe(bad)
    good = tiny_recipe(name="good.toml", teacher={"kind": "robustbench", "name": "Cui2023Decoupled_WRN-28-10",
                                                  "model_dir": str(tmp_path), "sha256": "A" * 64})
    recipe = ad.load_recipe(good)
    assert json.loads(json.dumps(recipe.to_dict()))["teacher"]["sha256"] == "a" * 64


def test_distillation_run_with_a_robustbench_teacher(tiny_recipe, tmp_path):
    _, state = reference_and_state(TINY_WRN)
    save_safetensors(layout_file(tmp_path / "models", TINY, suffix=".safetensors"), state)
    recipe = tiny_recipe(
        data={"kind": "synthetic", "n_train": 16, "n_test": 8, "num_classes": 10, "image_size": 32,
              "in_chans": 3},
        teacher={"kind": "robustbench", "name": TINY, "model_dir": str(tmp_path / "models"),
                 "model": TINY_WRN},
        attack={"kind": "rslad_kl", "eps": "8/255", "step_size": "2/255", "steps": 1},
        objective={"kind": "rslad"},
        train={"epochs": 1, "batch_size": 8, "log_every": 1, "device": "cpu"},
        eval={"batch_size": 8, "metrics": {"clean": {"kind": "clean"}}},
    )
    run = ad.train(recipe, tmp_path / "run")
    assert (run / "checkpoints" / "last.safetensors").exists()


def test_check_files_finds_the_file_or_raises_what_load_would_without_building_the_model(tmp_path, monkeypatch):
    loader = tiny_teacher(tmp_path)
    with pytest.raises(CheckpointError) as by_load:
        loader.load(num_classes=10, in_chans=3)
    with pytest.raises(CheckpointError) as by_check:
        loader.check_files()
    assert str(by_check.value) == str(by_load.value) and "not found" in str(by_check.value)
    _, state = reference_and_state(TINY_WRN)
    save_robustbench_pt(layout_file(tmp_path, TINY), state)
    with pytest.raises(CheckpointError, match="pickle file"):  # an untrusted .pt is refused as by load()
        loader.check_files()
    save_safetensors(layout_file(tmp_path, TINY, suffix=".safetensors"), state)
    monkeypatch.setattr("advdistill_plugins.teachers.robustbench.build_from_table",
                        lambda *a, **k: pytest.fail("check_files built the model"))
    monkeypatch.setattr("advdistill_plugins.teachers.files.read_state_dict",
                        lambda *a, **k: pytest.fail("check_files read the weights"))
    assert loader.check_files() is None
