"""End-to-end tests of the command line (in-process, tiny recipes, seconds)."""

import json
import subprocess
import sys

import pytest

from advdistill import __version__


def test_version(cli_runner):
    assert __version__ in cli_runner("--version").output


def test_recipe_check_and_show(cli_runner, tiny_recipe):
    path = tiny_recipe()
    assert "ok:" in cli_runner("recipe", "check", str(path)).output
    shown = json.loads(cli_runner("recipe", "show", str(path), "--set", "attack.steps=3").output)
    assert shown["attack"]["steps"] == 3 and len(shown["recipe_hash"]) == 16


def test_bad_recipe_exits_2_without_traceback(cli_runner, tiny_recipe):
    result = cli_runner("recipe", "check", str(tiny_recipe()), "--set", "attack.stepz=3", exit_code=2)
    assert "Error:" in result.output and "Did you mean 'steps'" in result.output
    assert "Traceback" not in result.output


def test_train_then_eval_end_to_end(cli_runner, tiny_recipe, tmp_path):
    out = tmp_path / "run"
    result = cli_runner("train", str(tiny_recipe()), "--out", str(out), "--set", "train.epochs=2")
    assert "| Clean |" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["clean"] >= 0
    # re-evaluate with other metrics into another directory, on a subset
    eval_out = tmp_path / "eval"
    cli_runner("eval", str(out), "--metrics", "clean,pgd", "--limit", "8", "--out", str(eval_out))
    again = json.loads((eval_out / "report.json").read_text())
    # "pgd" is a label of the recipe (a 2-step PGD) and wins over the metric kind of that name
    assert again["n_examples"] == 8 and set(again["metrics"]) == {"clean", "pgd2"}
    # a checkpoint with a recipe, outside a run directory
    cli_runner("eval", "--recipe", str(out / "recipe.json"), "--checkpoint",
               str(out / "checkpoints" / "last.safetensors"), "--metrics", "clean", "--out", str(tmp_path / "e2"))
    assert (tmp_path / "e2" / "report.md").exists()


def test_train_seed_and_device_shorthands(cli_runner, tiny_recipe, tmp_path):
    out = tmp_path / "run"
    cli_runner("train", str(tiny_recipe()), "--out", str(out), "--seed", "7", "--device", "cpu")
    saved = json.loads((out / "recipe.json").read_text())
    assert saved["train"]["seed"] == 7 and saved["train"]["device"] == "cpu"


def test_train_refuses_to_overwrite_and_resume_continues(cli_runner, tiny_recipe, tmp_path):
    out = tmp_path / "run"
    cli_runner("train", str(tiny_recipe()), "--out", str(out))
    result = cli_runner("train", str(tiny_recipe()), "--out", str(out), exit_code=2)
    assert "--resume" in result.output
    cli_runner("train", str(out / "recipe.json"), "--out", str(out), "--resume")


def test_eval_without_inputs_is_a_usage_error(cli_runner):
    from click.testing import CliRunner

    from advdistill.cli import cli

    result = CliRunner().invoke(cli, ["eval"])
    assert result.exit_code == 2 and "RUN_DIR" in result.output


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "advdistill.cli", "plugins"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "igdm" in out.stdout and "rslad" in out.stdout


def test_unusable_out_is_refused_before_any_data_is_read(cli_runner, tiny_recipe, tmp_path):
    # the data set of this recipe does not exist: reaching it would be a DataError, not the --out error
    recipe = tiny_recipe(data={"kind": "cifar10", "root": str(tmp_path / "no-data")})
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "run", tmp_path / "file"):
        result = cli_runner("train", str(recipe), "--out", str(out), exit_code=2)
        assert "cannot be created" in result.output or "is a file" in result.output, result.output
        assert "cifar" not in result.output and "Traceback" not in result.output
    result = cli_runner("eval", "--recipe", str(recipe), "--checkpoint", str(tmp_path / "file"),
                        "--out", str(tmp_path / "file" / "e"), exit_code=2)
    assert "cannot be created" in result.output and "cifar" not in result.output, result.output


def test_recipe_check_checks_the_data_and_teacher_files(cli_runner, tiny_recipe, tmp_path):
    recipe = tiny_recipe(
        data={"kind": "cifar10", "root": str(tmp_path / "data")},
        teacher={"kind": "checkpoint", "path": str(tmp_path / "teacher.safetensors"),
                 "model": {"kind": "small_cnn", "widths": [4], "hidden": 8}},
    )
    result = cli_runner("recipe", "check", str(recipe), exit_code=2)
    assert "is a valid recipe" in result.output and "--no-files skips this check" in result.output
    assert f"- [data] cifar10: expected {tmp_path / 'data' / 'cifar-10-batches-py' / 'data_batch_1'}" in result.output
    assert f"- [teacher] checkpoint not found: {tmp_path / 'teacher.safetensors'}" in result.output
    assert "Traceback" not in result.output
    assert "files not checked" in cli_runner("recipe", "check", str(recipe), "--no-files").output
    assert "files found: data" in cli_runner("recipe", "check", str(tiny_recipe())).output



@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["plugins", "--json"], ["recipe", "list"],
                                  ["recipe", "list", "--json", "cifar10/*"], ["recipe", "--help"]])
def test_quick_commands_import_no_torch(args, fresh_python):
    # torch alone takes seconds to import: the commands that only list things must not pay for it
    code = (
        "import sys\n"
        "from advdistill.cli import main\n"
        f"sys.argv = ['advdistill', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code in (0, None), exit.code\n"
        "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\n"
    )
    result = fresh_python(code, timeout=120)
    assert result.stderr.strip().splitlines()[-1] == "torch imported: False"
    assert result.stdout.strip()


#: commands that only resolve a bundled recipe (run in this order, in one process)
RESOLVING = [["recipe", "show", "demo/rslad+igdm"], ["recipe", "show", "cifar10/resnet18/rslad+igdm"],
             ["recipe", "show", "paper/cifar10/resnet18/ltd/rslad+igdm"],
             ["recipe", "check", "--no-files", "cifar100/mobilenetv2/adaad+igdm"]]


def test_recipe_commands_import_no_torch(fresh_python):
    # recipe show/check validate every table with its declared config class (plugins/<family>/config.py)
    # and read the component attributes they need from the registration (traits=): no torch
    code = (
        "import json, sys\n"
        "from advdistill.cli import main\n"
        "runs = []\n"
        f"for args in {RESOLVING!r}:\n"
        "    sys.argv = ['advdistill', *args]\n"
        "    try:\n        main()\n    except SystemExit as exit:\n        code = exit.code\n"
        "    else:\n        code = 0\n"
        "    runs.append([args, code or 0, 'torch' in sys.modules])\n"
        "print(json.dumps(runs), file=sys.stderr)\n"
    )
    result = fresh_python(code)
    runs = json.loads(result.stderr.strip().splitlines()[-1])
    assert [(args, code) for args, code, _ in runs] == [(args, 0) for args in RESOLVING], result.stdout
    assert result.stdout.count('"recipe_hash"') == 3 and "ok:" in result.stdout
    assert [args for args, _, imported in runs if imported] == [], "these commands imported torch"


def test_recipe_check_of_files_imports_no_torch(tmp_path, fresh_python):
    # the data sets' and teachers' file checks look for files only: their modules import torch where
    # tensors are made, so `recipe check` (files checked, the default) starts fast too
    from advdistill.testing import to_toml

    batches = tmp_path / "data" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (batches / name).write_bytes(b"")  # looked for, never read
    weights = tmp_path / "models" / "cifar10" / "Linf" / "Wang2023Better_WRN-28-10.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")
    run = tmp_path / "runs" / "teacher"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.safetensors").write_bytes(b"")
    (run / "recipe.json").write_text(json.dumps({"student": {"kind": "small_cnn", "widths": [4], "hidden": 8}}))
    common = {"schema": 1, "student": {"kind": "small_cnn", "widths": [4], "hidden": 8},
              "attack": {"kind": "rslad_kl"}, "objective": {"kind": "rslad"}}
    recipes = {
        "robustbench.toml": {**common, "data": {"kind": "cifar10", "root": str(tmp_path / "data")},
                             "teacher": {"kind": "robustbench", "name": "Wang2023Better_WRN-28-10",
                                         "dataset": "cifar10", "model_dir": str(tmp_path / "models")}},
        "checkpoint.toml": {**common, "data": {"kind": "mnist5k"},
                            "teacher": {"kind": "checkpoint", "path": str(run / "checkpoints" / "last.safetensors")}},
    }
    for name, table in recipes.items():
        (tmp_path / name).write_text(to_toml(table))
    code = (
        "import sys\n"
        "from advdistill.cli import main\n"
        f"for name in {list(recipes)!r}:\n"
        "    sys.argv = ['advdistill', 'recipe', 'check', name]\n"
        "    try:\n        main()\n    except SystemExit as exit:\n        assert exit.code in (0, None), exit.code\n"
        "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\n"
    )
    result = fresh_python(code, timeout=120, cwd=tmp_path)
    assert result.stdout.count("files found: data, teacher") == 2, result.stdout
    assert result.stderr.strip().splitlines()[-1] == "torch imported: False"
