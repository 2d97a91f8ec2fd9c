"""`advdistill teacher audit` on fabricated RobustBench-layout teachers: a right one passes, a wrongly
normalized one is an error naming the likely causes.

The "known" teachers are tiny entries added to the RobustBench table for the test: a small CNN
trained here for a few seconds on synthetic 32x32 images (its weights expect a mean/std inside the
model), whose "published" clean accuracy is what it reaches on the whole test split.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from rb_fabricate import layout_file, save_robustbench_pt, save_safetensors

import advdistill as ad
from advdistill_plugins.teachers import robustbench
from advdistill_plugins.teachers.robustbench import KnownTeacher

MEAN, STD = [0.5, 0.5, 0.5], [0.1, 0.1, 0.1]
ARCH = {"kind": "small_cnn", "widths": [4], "hidden": 16}
DATA = {"kind": "synthetic", "n_train": 256, "n_test": 400, "num_classes": 10, "image_size": 32, "seed": 3}
CIFAR10_STATS = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2471, 0.2435, 0.2616]}
RIGHT, WRONG_NORM, NO_NORM = "Tiny2024Audit_CNN", "Tiny2024AuditC10_CNN", "Tiny2024AuditNoNorm_CNN"


@pytest.fixture(scope="module")
def fabricated(tmp_path_factory):
    """A trained teacher in RobustBench's layout, its test images as a CIFAR-10 folder, its accuracy."""
    root = tmp_path_factory.mktemp("audit")
    splits = ad.build("dataset", DATA["kind"], **{k: v for k, v in DATA.items() if k != "kind"}).load()
    torch.manual_seed(0)
    model = ad.create_model("small_cnn", num_classes=10, mean=MEAN, std=STD, **{k: v for k, v in ARCH.items()
                                                                                 if k != "kind"})
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    x, y = splits.train_x.float() / 255, splits.train_y
    generator = torch.Generator().manual_seed(0)
    for _ in range(70):
        idx = torch.randint(0, x.shape[0], (32,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = 100.0 * (model(splits.test_x.float() / 255).argmax(1) == splits.test_y).float().mean().item()
    state = model.state_dict()
    for name in (RIGHT, WRONG_NORM):
        save_safetensors(layout_file(root / "models", name, suffix=".safetensors"), state)
    save_robustbench_pt(layout_file(root / "models", NO_NORM), state)  # RobustBench's own .pt format
    folder = root / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, images, labels in [(f"data_batch_{i}", splits.train_x[:2], splits.train_y[:2]) for i in range(1, 6)] + [
            ("test_batch", splits.test_x, splits.test_y)]:
        entry = {b"data": images.numpy().reshape(len(images), -1), b"labels": labels.numpy().astype(np.int64).tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))
    return root, accuracy


@pytest.fixture
def known(monkeypatch, fabricated):
    """The fabricated names in the RobustBench table: the weights with the right normalization, with
    CIFAR-10's mean/std, and with none."""
    _, accuracy = fabricated
    # added to the one table object (the recipe's config reads it from its own module), removed after the test
    for name, model in ((RIGHT, {**ARCH, "mean": MEAN, "std": STD}), (WRONG_NORM, {**ARCH, **CIFAR10_STATS}),
                        (NO_NORM, dict(ARCH))):
        monkeypatch.setitem(robustbench.KNOWN, ("cifar10", "Linf", name), KnownTeacher(
            name, "cifar10", "Linf", "TEST", model, (accuracy, accuracy - 5, accuracy - 10),
            (accuracy, accuracy - 10), "fabricated for this test"))
    return fabricated


def test_the_trained_teacher_is_well_above_chance(fabricated):
    assert fabricated[1] > 60  # what makes the rest meaningful


def test_a_right_teacher_passes(known, cli_runner):
    root, accuracy = known
    result = cli_runner("teacher", "audit", "--name", RIGHT, "--model-dir", str(root / "models"),
                        "--data-root", str(root / "data"), "-n", "100", "--device", "cpu")
    assert "on the first 100 test images of cifar10" in result.output
    assert f"published {accuracy:.2f} %, tolerance" in result.output and "   ok" in result.output
    assert "source: fabricated for this test" in result.output
    assert "PGD-20" in result.output and "at Linf ε = 8/255, on 100 images" in result.output


def test_a_wrongly_normalized_teacher_fails_naming_the_cause(known, cli_runner):
    root, accuracy = known
    result = cli_runner("teacher", "audit", "--name", WRONG_NORM, "--model-dir", str(root / "models"),
                        "--data-root", str(root / "data"), "-n", "400", "--attack", "none", "--device", "cpu",
                        exit_code=2)
    assert "BELOW PUBLISHED" in result.output
    assert f"but {accuracy:.2f} % is published for it" in result.output
    assert "input normalization" in result.output and "Likely causes" in result.output


def test_a_teacher_without_its_normalization_is_near_chance(known, cli_runner):
    root, _ = known
    result = cli_runner("teacher", "audit", "--name", NO_NORM, "--model-dir", str(root / "models"),
                        "--trust-pickle", "--data-root", str(root / "data"), "-n", "400", "--attack", "none",
                        "--device", "cpu", exit_code=2)
    assert "NEAR CHANCE" in result.output and "is near chance (10.00 % for 10 classes" in result.output
    assert "input normalization" in result.output


def audit_recipe(path, model_dir, **tables):
    """A recipe on the synthetic data whose teacher is the RobustBench model RIGHT in ``model_dir``."""
    from advdistill.testing import to_toml

    path.write_text(to_toml({
        "schema": 1, "data": DATA, "student": {"kind": "small_cnn", "widths": [4], "hidden": 8}, **tables,
        "teacher": {"kind": "robustbench", "name": RIGHT, "dataset": "cifar10", "model_dir": str(model_dir)},
    }))
    return path


def test_audit_of_a_recipe_teacher_as_json(known, cli_runner, tmp_path):
    root, accuracy = known
    recipe = audit_recipe(tmp_path / "r.toml", "elsewhere")
    result = cli_runner("teacher", "audit", str(recipe), "--model-dir", str(root / "models"), "-n", "100",
                        "--attack", "none", "--device", "cpu", "--json")
    record = json.loads(result.output)
    assert record["event"] == "teacher_audit" and record["name"] == RIGHT and record["n"] == 100
    assert record["status"] == "ok" and record["published"]["clean"] == pytest.approx(accuracy)
    assert record["robust"] is None and record["dataset"] == "synthetic"


def test_the_audit_attacks_at_the_recipe_threat_model_or_eps(known, cli_runner, tmp_path):
    root, _ = known
    recipe = audit_recipe(tmp_path / "r.toml", root / "models", attack={"kind": "pgd", "eps": 0.05})
    args = ("teacher", "audit", str(recipe), "-n", "20", "--device", "cpu")
    record = json.loads(cli_runner(*args, "--json").output)
    assert record["threat"] == {"norm": "linf", "eps": 0.05, "source": "[attack]"}
    assert "not compared" in cli_runner(*args).output  # the published numbers are at 8/255
    record = json.loads(cli_runner(*args, "--eps", "8/255", "--json").output)
    assert record["threat"] == {"norm": "linf", "eps": pytest.approx(8 / 255), "source": "metric"}
    assert "--eps" in cli_runner(*args, "--eps", "0", exit_code=2).output


def test_recipe_or_name(cli_runner, tmp_path):
    result = cli_runner("teacher", "audit", exit_code=2)
    assert "give a RECIPE or --name" in result.output


def test_published_numbers_come_with_their_source():
    for entry in robustbench.KNOWN.values():
        published = entry.published()
        assert published is not None and published.clean == entry.leaderboard[0]
        assert "robustbench" in published.source.lower() and "arXiv:" in published.source
    bdm = robustbench.KNOWN["cifar100", "Linf", "Wang2023Better_WRN-28-10"].published()
    assert (bdm.clean, bdm.autoattack, bdm.pgd20) == (72.58, 38.83, 44.24)
    assert "arXiv:2302.04638" in bdm.source and "model_info/cifar100/Linf/Wang2023Better_WRN-28-10.json" in bdm.source
