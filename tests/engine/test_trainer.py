import json

import pytest
import torch
from safetensors.torch import load_file

import advdistill as ad
from advdistill.engine import trainer as trainer_module
from advdistill.errors import CheckpointError, RecipeError, TrainingError
from advdistill.testing import TINY_RECIPE


def weights(run_dir, name="last"):
    return load_file(str(run_dir / "checkpoints" / f"{name}.safetensors"))


def test_train_writes_the_run_directory(tiny_recipe, tmp_path):
    run = ad.train(tiny_recipe(), tmp_path / "run")
    for name in ("recipe.json", "metrics.jsonl", "report.json", "report.md", "plots/training.png",
                 "checkpoints/last.safetensors", "checkpoints/last.state.safetensors"):
        assert (run / name).exists(), name
    recipe_json = json.loads((run / "recipe.json").read_text())
    assert recipe_json["recipe_hash"] == ad.load_recipe(run / "recipe.json").hash
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["event"] for r in records} == {"step", "epoch"}
    report = json.loads((run / "report.json").read_text())
    assert report["schema"] == 2 and report["n_examples"] == 32
    assert set(report["metrics"]) == {"clean", "pgd2"} and report["errors"] == {}
    assert 0 <= report["metrics"]["pgd2"] <= report["metrics"]["clean"] <= 100


def test_resume_is_exact(tiny_recipe, tmp_path, monkeypatch):
    """Two epochs in one go == one epoch, a crash, and --resume (bitwise, on CPU)."""

    ad.train(tiny_recipe("teacher.toml"), tmp_path / "t")
    recipe = tiny_recipe(
        train={"epochs": 2, "batch_size": 16, "log_every": 2, "device": "cpu"},
        objective={"kind": "rslad"}, attack={"kind": "rslad_kl", "steps": 2},
        teacher={"kind": "checkpoint", "path": str(tmp_path / "t" / "checkpoints" / "last.safetensors")},
        aux={"igdm": {"kind": "igdm", "alpha": {"kind": "linear", "end": 2.0}}},
        optim={"kind": "sgd", "lr": {"kind": "step", "value": 0.05, "milestones": [1]}},
        callbacks={"progress": False, "periodic_eval": {"kind": "periodic_eval", "limit": 16, "steps": 2}},
        data={**TINY_RECIPE["data"], "val_size": 16},
    )
    full = ad.train(recipe, tmp_path / "full")
    _train_until_epoch_two(recipe, tmp_path / "part", monkeypatch)
    ad.train(recipe, tmp_path / "part", resume=True)

    for name in ("last", "best"):
        a, b = weights(full, name), weights(tmp_path / "part", name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    records = [json.loads(line) for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1, 2]
    full_records = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in rs]  # noqa: E731
    assert strip(records) == strip(full_records)


def test_resume_refuses_a_different_recipe(tiny_recipe, tmp_path):
    ad.train(tiny_recipe(), tmp_path / "run")
    with pytest.raises(CheckpointError, match="hash"):
        ad.train(tiny_recipe(), tmp_path / "run", resume=True, overrides=["optim.lr=0.01"])


def test_existing_run_is_never_overwritten(tiny_recipe, tmp_path):
    ad.train(tiny_recipe(), tmp_path / "run")
    before = (tmp_path / "run" / "checkpoints" / "last.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match=r"already holds a run.*--resume"):
        ad.train(tiny_recipe(), tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").read_bytes() == before


def test_divergence_guard_stops_with_advice(tiny_recipe, tmp_path):
    with pytest.raises(TrainingError, match="diverged"):
        ad.train(tiny_recipe(), tmp_path / "run", overrides=["optim.lr=1e30", "train.max_loss=10"])


def test_teacher_is_frozen_and_not_optimized(tiny_recipe, tmp_path):
    from advdistill.engine.trainer import Trainer

    ad.train(tiny_recipe("teacher.toml"), tmp_path / "t")
    recipe = ad.load_recipe(tiny_recipe(
        teacher={"kind": "checkpoint", "path": str(tmp_path / "t" / "checkpoints" / "last.safetensors")},
        objective={"kind": "rslad"}))
    trainer = Trainer(recipe, tmp_path / "s")
    assert not trainer.teacher.training
    assert all(not p.requires_grad for p in trainer.teacher.parameters())
    optimized = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not optimized & {id(p) for p in trainer.teacher.parameters()}


def test_attack_bn_policy(tiny_recipe, tmp_path):
    """The inner maximization sees the student in eval mode by default, train mode on request."""
    from advdistill.engine.trainer import Trainer

    seen = []
    for policy in ("eval", "train"):
        trainer = Trainer(ad.load_recipe(tiny_recipe(), [f"train.attack_bn={policy}"]), tmp_path / policy)
        original = trainer.attack.perturb

        def spy(model, *args, _original=original, **kwargs):
            seen.append(model.training)
            return _original(model, *args, **kwargs)

        trainer.attack.perturb = spy
        trainer.train_epoch(1)
        assert trainer.student.training
    assert seen[0] is False and seen[-1] is True


def test_training_needs_attack_and_objective(tiny_recipe, tmp_path):
    with pytest.raises(RecipeError, match=r"needs an \[attack\]"):
        ad.train(tiny_recipe(attack=None), tmp_path / "run")


def test_training_never_sees_a_validation_image(tiny_recipe, tmp_path):
    """Every image of every training batch is a training image; none is a validation image."""
    from advdistill.engine.trainer import Trainer

    recipe = ad.load_recipe(tiny_recipe(
        data={**TINY_RECIPE["data"], "val_size": 16}, eval={"at_end": False},
        train={"epochs": 2, "batch_size": 16, "log_every": 2, "device": "cpu"},
        callbacks={"progress": False, "periodic_eval": {"kind": "periodic_eval", "steps": 1}},
    ))
    trainer = Trainer(recipe, tmp_path / "run")
    seen = []
    original = trainer.train_step

    def spy(x, y, progress, lr):
        seen.append(x.clone())
        return original(x, y, progress, lr)

    trainer.train_step = spy
    trainer.fit()

    def rows(images):
        return {tuple(image.flatten().tolist()) for image in images}

    val = rows(trainer.splits.val_x.float().div(255))
    train = rows(trainer.splits.train_x.float().div(255))
    batches = rows(torch.cat(seen))
    assert len(val) == 16 and len(train) == 48 and not val & train
    assert batches == train  # 2 epochs of 3 full batches see every training image...
    assert not batches & val  # ...and no validation image


def test_callbacks_cannot_read_the_test_split(tiny_recipe, tmp_path):
    from advdistill.engine.trainer import Trainer

    trainer = Trainer(ad.load_recipe(tiny_recipe()), tmp_path / "run")
    assert trainer.state.data.train_x is trainer.splits.train_x
    with pytest.raises(TrainingError, match="only the final evaluation reads the test images"):
        trainer.state.data.test_x[:4]


def _train_until_epoch_two(recipe, out, monkeypatch):
    """Train ``recipe`` into ``out`` and stop it (KeyboardInterrupt) at the start of epoch 2."""
    from advdistill.engine.trainer import Trainer

    original = Trainer.train_epoch

    def crash_in_epoch_two(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        ad.train(recipe, out)
    monkeypatch.setattr(Trainer, "train_epoch", original)


def _interrupted_run(tiny_recipe, tmp_path, monkeypatch, epochs=2):
    """A run stopped (KeyboardInterrupt) at the start of epoch 2: its checkpoint holds epoch 1."""
    recipe = tiny_recipe(train={"epochs": epochs, "batch_size": 16, "log_every": 2, "device": "cpu"},
                         eval={"at_end": False})
    _train_until_epoch_two(recipe, tmp_path / "part", monkeypatch)
    return recipe, tmp_path / "part"


def _make_legacy(run_dir):
    """Rewrite a run's checkpoint in the format of older versions: a state sidecar without the weights."""
    from safetensors.torch import safe_open, save_file

    path = run_dir / "checkpoints" / "last.state.safetensors"
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
        names = list(fh.keys())
        tensors = {k: fh.get_tensor(k) for k in names if not k.startswith("model/")}
    info = json.loads(meta["info"])
    meta["info"] = json.dumps({k: info[k] for k in ("epoch", "checkpoint_id", "best", "best_epoch")})
    save_file(tensors, str(path), metadata=meta)


def test_checkpoint_is_one_file_holding_the_weights(tiny_recipe, tmp_path, monkeypatch):
    from safetensors.torch import safe_open

    _, run = _interrupted_run(tiny_recipe, tmp_path, monkeypatch)
    with safe_open(str(run / "checkpoints" / "last.state.safetensors"), framework="pt") as fh:
        info = json.loads(fh.metadata()["info"])
        names = list(fh.keys())
    model_keys = {k.removeprefix("model/") for k in names if k.startswith("model/")}
    assert info["format"] == 2 and info["epoch"] == 1
    assert model_keys == set(weights(run))  # last.safetensors stays a plain weights file


def test_runs_of_older_versions_still_resume_exactly(tiny_recipe, tmp_path, monkeypatch):
    recipe, run = _interrupted_run(tiny_recipe, tmp_path, monkeypatch)
    _make_legacy(run)
    ad.train(recipe, run, resume=True)
    full = ad.train(recipe, tmp_path / "full")
    for key, value in weights(full).items():
        assert torch.equal(value, weights(run)[key]), key


def test_older_run_interrupted_between_its_two_files_says_what_to_do(tiny_recipe, tmp_path, monkeypatch):
    from advdistill.engine.checkpoint import read_metadata, save_weights

    recipe, run = _interrupted_run(tiny_recipe, tmp_path, monkeypatch)
    _make_legacy(run)
    # the old order wrote the weights first: a kill between the renames left newer weights
    last = run / "checkpoints" / "last.safetensors"
    student = ad.create_model("small_cnn", num_classes=4, in_chans=1, widths=[4], hidden=8)
    save_weights(last, student, {**read_metadata(last), "epoch": 2, "checkpoint_id": "0123456789abcdef"})
    with pytest.raises(CheckpointError, match=r"interrupted between the two files.*--init-from .*last\.safetensors"):
        ad.train(recipe, run, resume=True)


def _step_records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_after_a_diverged_first_epoch_starts_clean(tiny_recipe, tmp_path):
    recipe = tiny_recipe()
    run = tmp_path / "run"
    with pytest.raises(TrainingError, match="diverged"):
        ad.train(recipe, run, overrides=["optim.lr=1e30", "train.max_loss=10", "train.log_every=1"])
    assert _step_records(run), "the diverged attempt logged steps"
    assert not (run / "checkpoints" / "last.state.safetensors").exists()
    # no checkpoint: nothing to continue, so a changed recipe starts the run over
    ad.train(recipe, run, resume=True)
    fresh = ad.train(recipe, tmp_path / "fresh")
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in rs]  # noqa: E731
    assert strip(_step_records(run)) == strip(_step_records(fresh))


def test_a_fresh_start_never_appends_to_an_earlier_attempt(tiny_recipe, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingError):
        ad.train(tiny_recipe(), run, overrides=["optim.lr=1e30", "train.max_loss=10", "train.log_every=1"])
    before = (run / "metrics.jsonl").read_text()
    with pytest.raises(CheckpointError, match=r"stopped before its first checkpoint.*--resume"):
        ad.train(tiny_recipe(), run)
    assert (run / "metrics.jsonl").read_text() == before


def test_resume_tolerates_a_torn_last_line_of_metrics(tiny_recipe, tmp_path, monkeypatch, caplog):
    import logging

    recipe, run = _interrupted_run(tiny_recipe, tmp_path, monkeypatch)
    with open(run / "metrics.jsonl", "ab") as fh:
        fh.write(b'{"event": "step", "epoch": 2, "step": 5, "lo')  # killed while appending
    with caplog.at_level(logging.WARNING):
        ad.train(recipe, run, resume=True)
    assert "damaged last line" in caplog.text
    records = _step_records(run)
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1, 2]
    full = ad.train(recipe, tmp_path / "full")
    for key, value in weights(full).items():
        assert torch.equal(value, weights(run)[key]), key


@pytest.mark.parametrize("damage", ["truncated", "list"])
def test_damaged_recipe_json_names_the_file_and_the_way_out(damage, tiny_recipe, tmp_path, monkeypatch, cli_runner):
    recipe, run = _interrupted_run(tiny_recipe, tmp_path, monkeypatch)
    saved = run / "recipe.json"
    text = saved.read_text()
    saved.write_text(text[: len(text) // 2] if damage == "truncated" else "[1, 2]\n")
    for args in (["train", str(saved), "--out", str(run), "--resume"], ["eval", str(run)]):
        result = cli_runner(*args, exit_code=2)
        assert str(saved) in result.output and "damaged" in result.output, result.output
        assert "Traceback" not in result.output
    # the way out the message gives: the original recipe
    cli_runner("train", str(recipe), "--out", str(run), "--resume")
    assert ad.load_recipe(saved).hash == ad.load_recipe(recipe).hash, "the resume rewrote recipe.json"
    saved.write_text("[1, 2]\n")
    cli_runner("eval", str(run), "--recipe", str(recipe), "--metrics", "clean", "--out", str(tmp_path / "e"))


def test_checkpoint_teacher_with_a_damaged_recipe_json(tiny_recipe, tmp_path, monkeypatch):
    _, run = _interrupted_run(tiny_recipe, tmp_path, monkeypatch)
    (run / "recipe.json").write_text('{"schema": 1, "stud')
    teacher = ad.build("teacher", "checkpoint", path=str(run / "checkpoints" / "last.safetensors"))
    with pytest.raises(RecipeError, match=r"recipe\.json: invalid JSON.*damaged"):
        teacher.load(num_classes=4, in_chans=1)


def test_train_names_a_missing_teacher_before_reading_the_data(tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "load_data", lambda recipe: pytest.fail("the data set was read"))
    recipe = tiny_recipe(teacher={"kind": "checkpoint", "path": str(tmp_path / "t.safetensors"),
                                  "model": {"kind": "small_cnn", "widths": [4], "hidden": 8}})
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        ad.train(recipe, tmp_path / "run")


def test_resuming_a_finished_run_says_so_and_changes_nothing(tiny_recipe, tmp_path, caplog, cli_runner):
    import re

    run = ad.train(tiny_recipe(), tmp_path / "run")
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.rglob("*") if p.is_file()}
    result = cli_runner("train", str(run / "recipe.json"), "--out", str(run), "--resume")
    assert "is finished: it has trained all 1 epochs" in result.output + caplog.text
    assert "# Evaluation report" in result.output  # its report, as after training
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.rglob("*") if p.is_file()} == files
    # the way to train it longer, as the message gives it, works
    command = re.search(r"`advdistill (train .*?)`", caplog.text).group(1).replace("train.epochs=N", "train.epochs=2")
    cli_runner(*command.split())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1, 2]


def test_a_run_stopped_in_its_final_evaluation_resumes_into_it(tiny_recipe, tmp_path, caplog):
    run = ad.train(tiny_recipe(), tmp_path / "run")
    (run / "report.json").unlink()  # as if killed while evaluating
    before = (run / "metrics.jsonl").read_text()
    ad.train(tiny_recipe(), run, resume=True)
    assert "running the final evaluation, which did not finish" in caplog.text
    assert (run / "report.json").exists() and (run / "metrics.jsonl").read_text() == before


def test_the_log_says_once_when_max_steps_per_epoch_cuts_the_epochs(tiny_recipe, tmp_path, caplog):
    # 64 training images in batches of 16: 4 steps per epoch, cut to 1
    ad.train(tiny_recipe(train={"epochs": 2, "batch_size": 16, "max_steps_per_epoch": 1, "device": "cpu"}),
             tmp_path / "cut")
    said = "train.max_steps_per_epoch = 1 cuts every epoch to 1 of its 4 steps (16 of the 64 training images"
    assert caplog.text.count(said) == 1
    caplog.clear()
    ad.train(tiny_recipe(train={"epochs": 1, "batch_size": 16, "max_steps_per_epoch": 4, "device": "cpu"}),
             tmp_path / "whole")
    assert "max_steps_per_epoch" not in caplog.text  # 4 of 4 steps: nothing cut
