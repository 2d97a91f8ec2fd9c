"""Planning and running a study: dry-run listing, skipping finished runs, resuming interrupted ones,
refusing changed ones, and carrying on past a failed run."""

import json

import pytest

import advdistill.api
from advdistill.errors import RunDirectoryError, StudyError
from advdistill.study import run_study
from advdistill.study.runner import CHANGED, DONE, NEW, RESUME, plan, run_state
from advdistill.study.spec import load_study


@pytest.fixture
def train_calls(monkeypatch):
    """Records every (run directory name, resume) the study trains, and still trains."""
    calls = []
    original = advdistill.api.train

    def train(recipe, out_dir, resume=False, overrides=()):
        calls.append(("/".join(out_dir.parts[-2:]), resume))
        return original(recipe, out_dir, resume=resume, overrides=overrides)

    monkeypatch.setattr(advdistill.api, "train", train)
    return calls


def test_dry_run_lists_every_run_and_runs_nothing(study_dir, cli_runner):
    out = study_dir / "out"
    result = cli_runner("study", str(study_dir / "study.toml"), "--dry-run", "--out", str(out))
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [
        "setup/teacher", "rslad/seed0", "rslad+igdm/seed0", "rslad/seed1", "rslad+igdm/seed1"]
    assert all("to run" in line for line in lines[:-1])
    assert str(out / "rslad+igdm" / "seed1") in lines[4]
    assert lines[-1] == f"5 runs in {out}: 0 done, 0 to resume, 5 to run"
    assert not out.exists()


def test_plan_substitutes_the_setup_run_and_sets_the_seed(study_dir):
    runs = plan(load_study(study_dir / "study.toml"), study_dir / "out")
    student = runs[2]
    assert student.label == "rslad+igdm/seed0" and student.needs == ("teacher",)
    teacher_ckpt = study_dir / "out" / "setup" / "teacher" / "checkpoints" / "last.safetensors"
    assert student.overrides == (f'teacher.path="{teacher_ckpt}"', 'aux.igdm.kind="igdm"', "aux.igdm.alpha=2.0",
                                 "train.seed=0")
    assert runs[0].overrides == () and runs[0].needs == ()
    assert len({r.recipe_hash for r in runs}) == 5


def test_resume_of_a_partly_finished_study(study_dir, monkeypatch, train_calls, capsys):
    from advdistill.engine.trainer import Trainer

    # rslad+igdm trains two epochs, and its seed-0 run is interrupted in the second
    text = (study_dir / "study.toml").read_text().replace("alpha = 2.0 }", "alpha = 2.0 }, train.epochs = 2")
    (study_dir / "study.toml").write_text(text)
    original = Trainer.train_epoch

    def interrupted_in_epoch_two(self, epoch):
        if epoch == 2 and self.out_dir.parts[-2:] == ("rslad+igdm", "seed0"):
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted_in_epoch_two)
    out = study_dir / "out"
    with pytest.raises(KeyboardInterrupt):
        run_study(study_dir / "study.toml", out=out)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    states = [r.status for r in plan(load_study(study_dir / "study.toml"), out)]
    assert states == [DONE, DONE, RESUME, NEW, NEW]
    # the tables were written for what had finished
    assert json.loads((out / "study.json").read_text())["cells"]["rslad"]["seeds_done"] == [0]
    finished_report = (out / "rslad" / "seed0" / "report.json").read_text()

    train_calls.clear()
    summary = run_study(study_dir / "study.toml", out=out, echo=print)
    assert train_calls == [("rslad+igdm/seed0", True), ("rslad/seed1", False), ("rslad+igdm/seed1", False)]
    assert (out / "rslad" / "seed0" / "report.json").read_text() == finished_report
    epochs = [json.loads(line)["epoch"] for line in (out / "rslad+igdm" / "seed0" / "metrics.jsonl").open()
              if json.loads(line)["event"] == "epoch"]
    assert epochs == [1, 2]
    printed = capsys.readouterr().out
    assert "resuming rslad+igdm/seed0" in printed and "[5/5] rslad+igdm/seed1 done in" in printed
    assert "ETA" in printed
    assert all(r["state"] == DONE for r in summary["runs"])


def test_a_changed_run_is_refused_before_anything_runs(study_dir, train_calls):
    out = study_dir / "out"
    run_study(study_dir / "study.toml", out=out, echo=lambda line: None)
    text = (study_dir / "study.toml").read_text().replace("alpha = 2.0", "alpha = 1.0")
    (study_dir / "study.toml").write_text(text)
    runs = plan(load_study(study_dir / "study.toml"), out)
    assert [r.status for r in runs] == [DONE, DONE, CHANGED, DONE, CHANGED]
    assert "its report.json is from recipe" in runs[2].detail
    train_calls.clear()
    with pytest.raises(StudyError, match=r"2 run directories hold results of another recipe:\n.*rslad\+igdm/seed0"):
        run_study(study_dir / "study.toml", out=out, echo=lambda line: None)
    assert train_calls == []


def test_run_state_of_a_run_directory(tmp_path):
    assert run_state(tmp_path, "abc") == (NEW, "not started")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.safetensors").write_bytes(b"")
    (tmp_path / "metrics.jsonl").write_text('{"event": "step", "epoch": 1}\n{"event": "epoch", "epoch": 3}\n')
    assert run_state(tmp_path, "abc") == (RESUME, "interrupted after epoch 3: will resume")
    (tmp_path / "recipe.json").write_text(json.dumps({"recipe_hash": "old"}))
    assert run_state(tmp_path, "abc")[0] == CHANGED
    (tmp_path / "report.json").write_text(json.dumps({"recipe_hash": "abc"}))
    assert run_state(tmp_path, "abc") == (DONE, "report.json present")


def test_a_failed_run_does_not_stop_the_others(study_dir, train_calls):
    # rslad+igdm's teacher path points nowhere: its runs fail when training starts, rslad's finish
    text = (study_dir / "study.toml").read_text().replace(
        'set = { aux.igdm = { kind = "igdm", alpha = 2.0 } }',
        "set = ['teacher.path=\"nowhere.safetensors\"', 'aux.igdm.kind=\"igdm\"']")
    (study_dir / "study.toml").write_text(text)
    out = study_dir / "out"
    lines = []
    with pytest.raises(StudyError, match=r"2 runs did not finish: rslad\+igdm/seed0: .*nowhere\.safetensors"):
        run_study(study_dir / "study.toml", out=out, echo=lines.append)
    assert [r.status for r in plan(load_study(study_dir / "study.toml"), out)] == [DONE, DONE, NEW, DONE, NEW]
    assert any(line.startswith("[2/5] rslad+igdm/seed0 FAILED after") for line in lines)  # 2 of 5 done
    summary = json.loads((out / "study.json").read_text())
    assert summary["cells"]["rslad"]["seeds_done"] == [0, 1] and summary["cells"]["rslad+igdm"]["seeds_done"] == []
    assert "Not finished: rslad+igdm/seed0 (failed: " in (out / "study.md").read_text()


def test_cells_wait_for_a_failed_setup_run_and_are_blocked(study_dir, train_calls):
    setup = '[setup.teacher]\nrecipe = "teacher.toml"'
    text = (study_dir / "study.toml").read_text().replace(setup, setup + '\nset = ["train.batch_size=1000"]')
    (study_dir / "study.toml").write_text(text)
    lines = []
    with pytest.raises(StudyError, match=r"5 runs did not finish: setup/teacher: .*exceeds"):
        run_study(study_dir / "study.toml", out=study_dir / "out", echo=lines.append)
    assert train_calls == [("setup/teacher", False)]
    assert any("rslad/seed0 skipped: setup run teacher failed" in line for line in lines)


def test_cli_reports_a_bad_study_file_without_a_traceback(study_dir, cli_runner):
    (study_dir / "bad.toml").write_text('schema = 1\nseeds = [0]\n[cells.a]\nrecipe = "teacher.toml"\nsett = 1\n')
    result = cli_runner("study", str(study_dir / "bad.toml"), "--dry-run", exit_code=2)
    assert "[cells.a]: unknown key 'sett'. Did you mean 'set'?" in result.output
    assert "Traceback" not in result.output


def test_a_run_without_evaluation_at_the_end_is_evaluated(study_dir):
    (study_dir / "noeval.toml").write_text(
        'schema = 1\nseeds = [3]\n[cells.plain]\nrecipe = "teacher.toml"\nset = ["eval.at_end=false"]\n')
    summary = run_study(study_dir / "noeval.toml", out=study_dir / "out", echo=lambda line: None)
    report = json.loads((study_dir / "out" / "plain" / "seed3" / "report.json").read_text())
    assert set(report["metrics"]) == {"clean", "pgd20"}
    assert summary["cells"]["plain"]["metrics"]["clean"]["n"] == 1


def hold_lock(directory, pid=12345):
    """Lock ``directory`` as another advdistill process would (advdistill.rundir's lock file)."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    held = open(directory / "advdistill.lock", "w")  # noqa: SIM115 - closed by the caller
    fcntl.flock(held, fcntl.LOCK_EX)
    held.write(json.dumps({"pid": pid, "host": "elsewhere", "command": "train"}) + "\n")
    held.flush()
    return held


def test_a_run_another_process_trains_is_left_alone(study_dir, train_calls):
    refused = r"rslad/seed1: .*is in use by another advdistill process \(pid 12345"
    with hold_lock(study_dir / "out" / "rslad" / "seed1"), pytest.raises(StudyError, match=refused):
        run_study(study_dir / "study.toml", out=study_dir / "out", echo=lambda line: None)
    assert ("rslad/seed1", False) not in train_calls and ("rslad+igdm/seed1", False) in train_calls


def test_a_second_study_on_the_same_directory_is_refused(study_dir, train_calls):
    refused = r"out is in use by another advdistill process \(pid 4242"
    with hold_lock(study_dir / "out", pid=4242), pytest.raises(RunDirectoryError, match=refused):
        run_study(study_dir / "study.toml", out=study_dir / "out", echo=lambda line: None)
    assert train_calls == []


@pytest.mark.slow
def test_sigterm_stops_the_study_and_its_workers(study_dir):
    """`kill` on a study with --jobs 2 ends its worker processes too; the next call resumes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    # long enough runs that the study is still busy when it is killed
    text = (study_dir / "study.toml").read_text().replace("set = ['", "set = ['train.epochs=50', '")
    (study_dir / "study.toml").write_text(text)
    out = study_dir / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    study = subprocess.Popen([sys.executable, "-m", "advdistill.cli", "study", str(study_dir / "study.toml"),
                              "--out", str(out), "--jobs", "2"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    locks = []
    while time.time() < deadline and len(locks) < 2:  # wait until two student workers train
        locks = [p for p in out.glob("rslad*/seed0/advdistill.lock") if p.exists() and p.read_text().strip()]
        time.sleep(0.5)
    assert len(locks) == 2, study.stderr.read() if study.poll() is not None else "workers never started"
    pids = [json.loads(p.read_text())["pid"] for p in locks]
    study.send_signal(signal.SIGTERM)
    study.wait(timeout=60)
    assert study.returncode != 0
    time.sleep(1)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
