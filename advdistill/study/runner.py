"""Running a study: plan the runs, skip the finished ones, resume the interrupted ones, run the rest.

Every run is an ordinary run directory (``<study dir>/<cell>/seed<k>/``, setup runs in
``<study dir>/setup/<name>/``) trained through the public API. With ``jobs > 1`` the runs
go to subprocesses (``python -m advdistill.study.worker``), each pinned to one thread.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from attrs import define, field

from advdistill.errors import AdvDistillError, StudyError
from advdistill.study.spec import SETUP_FOLDER, Study, placeholders, substitute

Echo = Callable[[str], None]

#: what a planned run needs: nothing (done), a fresh start, a resume, or a decision (changed)
DONE, NEW, RESUME, CHANGED = "done", "new", "resume", "changed"
#: how a run ended in this sitting
FINISHED, FAILED, BLOCKED = "finished", "failed", "blocked"
LOG_NAME = "run.log"


@define(eq=False)  # identity: the scheduler keys its running processes by run
class PlannedRun:
    """One run of the study: its recipe and overrides, directory, and state on disk."""

    label: str
    cell: str | None
    setup: str | None
    seed: int | None
    recipe_path: Path
    overrides: tuple[str, ...]
    directory: Path
    needs: tuple[str, ...]
    recipe_hash: str
    status: str
    detail: str
    #: filled in while the study runs
    outcome: str | None = None
    seconds: float | None = None
    error: str | None = None
    started: float | None = field(default=None, repr=False)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _epochs_done(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return 0
    epochs = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("event") == "epoch":
            epochs = max(epochs, int(record.get("epoch", 0)))
    return epochs


def run_state(run_dir: Path, recipe_hash: str) -> tuple[str, str]:
    """(status, detail) of a run directory for the recipe hash the study expects."""
    report = _read_json(run_dir / "report.json")
    if report is not None:
        found = report.get("recipe_hash")
        if found == recipe_hash:
            return DONE, "report.json present"
        return CHANGED, f"its report.json is from recipe {found}, the study now gives {recipe_hash}"
    if (run_dir / "checkpoints" / "last.safetensors").exists():
        saved = (_read_json(run_dir / "recipe.json") or {}).get("recipe_hash")
        if saved is not None and saved != recipe_hash:
            return CHANGED, f"its recipe.json has hash {saved}, the study now gives {recipe_hash}"
        return RESUME, f"interrupted after epoch {_epochs_done(run_dir)}: will resume"
    return NEW, "not started"


def plan(study: Study, out: str | Path | None = None) -> list[PlannedRun]:
    """Every run of ``study`` in execution order (setup runs, then the cells seed by seed), with
    its resolved recipe hash and state on disk. Raises :class:`StudyError` for a recipe that fails."""
    from advdistill.api import load_recipe

    root = Path(out) if out is not None else study.out
    setup_dirs = {name: root / SETUP_FOLDER / name for name in study.setup}

    def make(label, cell, setup, seed, recipe_path, overrides, directory) -> PlannedRun:
        full = substitute((*overrides, *([f"train.seed={seed}"] if seed is not None else [])), setup_dirs)
        try:
            recipe = load_recipe(recipe_path, full)
        except AdvDistillError as exc:
            raise StudyError(f"{study.path}: run {label}: {exc}") from None
        status, detail = run_state(directory, recipe.hash)
        return PlannedRun(label, cell, setup, seed, recipe_path, full, directory,
                          tuple(dict.fromkeys(placeholders(overrides))), recipe.hash, status, detail)

    runs = [make(f"{SETUP_FOLDER}/{name}", None, name, s.seed, s.recipe, s.overrides, setup_dirs[name])
            for name, s in study.setup.items()]
    for seed in study.seeds:  # seed by seed: every cell's first seed is done before any second one
        for label, cell in study.cells.items():
            runs.append(make(f"{label}/seed{seed}", label, None, seed, cell.recipe,
                             (*study.overrides, *cell.overrides), root / label / f"seed{seed}"))
    return runs


# -- executing one run --------------------------------------------------------------------------

def execute_run(recipe_path: Path, overrides: Sequence[str], run_dir: Path, *, resume: bool,
                expect_hash: str | None = None) -> Path:
    """Train (or resume) one run through the public API; evaluate it if training wrote no report.

    The run directory stays locked (:func:`advdistill.rundir.run_dir_lock`) from training to the
    report, in the process that trains it: a second process that wants it is refused.
    """
    from advdistill.api import evaluate, load_recipe, train
    from advdistill.rundir import run_dir_lock

    recipe = load_recipe(recipe_path, list(overrides))
    if expect_hash is not None and recipe.hash != expect_hash:
        raise StudyError(
            f"{run_dir}: the recipe now resolves to {recipe.hash}, but the study planned {expect_hash}; "
            f"was {recipe_path} edited while the study ran?"
        )
    with run_dir_lock(run_dir, "study"):
        train(recipe, run_dir, resume=resume)
        if not (run_dir / "report.json").exists():  # a recipe with eval.at_end = false
            evaluate(run_dir)
    return run_dir


def worker_command(run: PlannedRun) -> list[str]:
    """The subprocess that executes ``run`` (see :mod:`advdistill.study.worker`)."""
    command = [sys.executable, "-m", "advdistill.study.worker", "--recipe", str(run.recipe_path),
               "--out", str(run.directory), "--expect-hash", run.recipe_hash]
    for text in run.overrides:
        command += ["--set", text]
    return [*command, "--resume"] if run.status == RESUME else command


def single_thread_env() -> dict[str, str]:
    """The environment of a worker: one intra-op thread (see ``Study.jobs`` in docs/studies.md)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


# -- progress -----------------------------------------------------------------------------------

def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Counts runs and estimates the time left from the run times measured in this sitting."""

    def __init__(self, runs: Sequence[PlannedRun], jobs: int) -> None:
        self.todo = [r for r in runs if r.status != DONE]
        self.total, self.jobs = len(runs), jobs
        self.already_done = self.total - len(self.todo)
        self.began = time.perf_counter()

    def _estimate(self, run: PlannedRun) -> float | None:
        timed = [r for r in self.todo if r.outcome == FINISHED and r.seconds is not None]
        for group in ([r for r in timed if r.cell == run.cell and r.setup == run.setup],
                      [r for r in timed if r.cell is not None], timed):
            if group:
                return sum(r.seconds for r in group) / len(group)
        return None

    def eta(self) -> float | None:
        """Seconds left: the estimated time of the queued runs and the rest of the running ones, over the jobs."""
        now = time.perf_counter()
        left, count = 0.0, 0
        for run in self.todo:
            if run.outcome is not None:
                continue
            estimate = self._estimate(run)
            if estimate is None:
                return None
            elapsed = now - run.started if run.started is not None else 0.0
            left += max(estimate - elapsed, 0.0)
            count += 1
        return left / max(min(self.jobs, count), 1)

    def line(self, run: PlannedRun) -> str:
        done = self.already_done + sum(r.outcome == FINISHED for r in self.todo)
        left = sum(r.outcome is None for r in self.todo)
        if run.outcome == FINISHED:
            what = f"{run.label} done in {_duration(run.seconds or 0.0)}{_headline(run.directory)}"
        elif run.outcome == FAILED:
            what = f"{run.label} FAILED after {_duration(run.seconds or 0.0)}: {run.error}"
        else:
            what = f"{run.label} skipped: {run.error}"
        eta = self.eta()
        eta_text = "ETA after the first timed run" if eta is None else f"ETA {_duration(eta)}"
        if not left:
            eta_text = "nothing left"
        return (f"[{done}/{self.total}] {what} · elapsed {_duration(time.perf_counter() - self.began)} · "
                f"{eta_text} ({left} run{'s' if left != 1 else ''} left)")


def _headline(run_dir: Path) -> str:
    metrics = (_read_json(run_dir / "report.json") or {}).get("metrics", {})
    shown = [f"{key} {metrics[key]:.2f}" for key in ("clean", "pgd20", "autoattack")
             if isinstance(metrics.get(key), (int, float))]
    return f" ({', '.join(shown)})" if shown else ""


# -- the scheduler ------------------------------------------------------------------------------

def execute(runs: Sequence[PlannedRun], *, jobs: int = 1, echo: Echo = print,
            after_each: Callable[[], None] | None = None) -> Progress:
    """Run every planned run that is not done, ``jobs`` at a time; a run starts once the setup
    runs it names are finished. A failed run does not stop the others (those needing it are blocked)."""
    changed = [r for r in runs if r.status == CHANGED]
    if changed:
        listing = "\n".join(f"  {r.directory}: {r.detail}" for r in changed)
        raise StudyError(
            f"{len(changed)} run director{'ies' if len(changed) > 1 else 'y'} hold results of another recipe:\n"
            f"{listing}\nNothing was run. Delete (or move) them to run them again with the study as it is now, "
            "restore the study and recipe files that made them, or choose another --out."
        )
    progress = Progress(runs, jobs)
    finished_setups = {r.setup for r in runs if r.setup is not None and r.status == DONE}
    failed_setups: set[str] = set()
    queue = [r for r in runs if r.status != DONE]
    running: dict[PlannedRun, subprocess.Popen] = {}

    def settle(run: PlannedRun, ok: bool, error: str | None) -> None:
        run.seconds = time.perf_counter() - (run.started or time.perf_counter())
        run.outcome, run.error = (FINISHED, None) if ok else (FAILED, error)
        if run.setup is not None:
            (finished_setups if ok else failed_setups).add(run.setup)
        echo(progress.line(run))
        if after_each is not None:
            after_each()

    def block(run: PlannedRun) -> None:
        queue.remove(run)
        failed = [n for n in run.needs if n in failed_setups]
        run.outcome = BLOCKED
        run.error = f"setup run {failed[0]} failed" if failed else "its setup runs did not finish"
        echo(progress.line(run))

    # `kill` (SIGTERM) ends the study like Ctrl-C: its workers are stopped, not left running
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if on_main_thread else None
    try:
        while queue or running:
            # start what may start
            for run in list(queue):
                if any(n in failed_setups for n in run.needs):
                    block(run)
                    continue
                if len(running) >= jobs or not all(n in finished_setups for n in run.needs):
                    continue
                queue.remove(run)
                run.started = time.perf_counter()
                action = "resuming" if run.status == RESUME else "starting"
                echo(f"{action} {run.label} -> {run.directory}")
                if jobs == 1:
                    ok, error = _run_in_process(run)
                    settle(run, ok, error)
                    break  # re-scan: a finished setup run may unblock others
                running[run] = _spawn(run)
            # collect what has finished
            for run, process in list(running.items()):
                code = process.poll()
                if code is None:
                    continue
                del running[run]
                ok = code == 0 and (run.directory / "report.json").exists()
                settle(run, ok, None if ok else f"exit status {code}: {_tail(run.directory / LOG_NAME)}")
            if running:
                time.sleep(0.2)
            elif queue and not any(all(n in finished_setups for n in r.needs) for r in queue):
                for run in list(queue):  # only runs waiting on setup runs that will never finish
                    block(run)
    finally:
        for process in running.values():  # interrupted: stop our own workers, they resume next time
            process.terminate()
        for process in running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return progress


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _run_in_process(run: PlannedRun) -> tuple[bool, str | None]:
    try:
        execute_run(run.recipe_path, run.overrides, run.directory, resume=run.status == RESUME,
                    expect_hash=run.recipe_hash)
    except AdvDistillError as exc:
        return False, str(exc)
    except Exception as exc:  # a crash in one run must not lose the study; the traceback goes to the run's log
        run.directory.mkdir(parents=True, exist_ok=True)
        with open(run.directory / LOG_NAME, "a", encoding="utf-8") as log:
            log.write(traceback.format_exc())
        return False, f"{type(exc).__name__}: {exc} (traceback in {run.directory / LOG_NAME})"
    return True, None


def _spawn(run: PlannedRun) -> subprocess.Popen:
    run.directory.mkdir(parents=True, exist_ok=True)
    with open(run.directory / LOG_NAME, "ab") as log:
        return subprocess.Popen(worker_command(run), stdout=log, stderr=subprocess.STDOUT, env=single_thread_env())


# -- listing --------------------------------------------------------------------------------------

STATUS_TEXT = {DONE: "done", NEW: "to run", RESUME: "to resume", CHANGED: "CHANGED"}


def describe(runs: Sequence[PlannedRun], root: Path, brief: bool = False) -> str:
    """The runs and their state (``--dry-run``), or with ``brief`` a one-line count."""
    counts = {status: sum(r.status == status for r in runs) for status in STATUS_TEXT}
    total = (f"{len(runs)} runs in {root}: {counts[DONE]} done, {counts[RESUME]} to resume, "
             f"{counts[NEW]} to run" + (f", {counts[CHANGED]} changed" if counts[CHANGED] else ""))
    if brief:
        return total
    width = max(len(r.label) for r in runs)
    lines = [f"{r.label.ljust(width)}  {STATUS_TEXT[r.status]:<9}  {r.recipe_hash}  {r.directory}"
             + (f"  ({r.detail})" if r.status in (RESUME, CHANGED) else "") for r in runs]
    return "\n".join([*lines, total])
