"""Studies: a grid of recipes × seeds with means, confidence intervals and paired tests (`advdistill study`).

``run_study(path)`` is what the command does; the pieces are :mod:`.spec` (the study file),
:mod:`.runner` (planning and running), :mod:`.report` (study.json / study.md) and :mod:`.plots`;
the statistics are :mod:`advdistill.stats`. docs/studies.md documents the file format and every statistic.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from advdistill.errors import StudyError
from advdistill.study.spec import Study, load_study

__all__ = ["Study", "StudyError", "load_study", "run_study"]


def run_study(
    path: str | Path,
    *,
    out: str | Path | None = None,
    jobs: int = 1,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or with ``dry_run`` only list) the study in ``path``; returns the study.json summary.

    Finished runs are skipped, interrupted ones resume, and study.json / study.md / plots/ are
    (re)written in the study directory (``out``, default: the file's ``out``), which is locked
    meanwhile (a second study on it is refused with a RunDirectoryError naming the first). A run
    that fails is reported and does not stop the others; :class:`StudyError` is raised at the end
    if any did.
    """
    from advdistill.rundir import run_dir_lock
    from advdistill.study.report import write_study_report
    from advdistill.study.runner import BLOCKED, FAILED, describe, execute, plan, run_state

    study = load_study(path)
    root = Path(out) if out is not None else study.out
    runs = plan(study, root)  # resolves every recipe first: a bad one costs nothing
    if dry_run:
        echo(describe(runs, root))
        from advdistill.study.report import summarize

        return summarize(study, runs)
    if jobs < 1:
        raise StudyError(f"--jobs must be at least 1, got {jobs}")
    # one study at a time writes into a study directory; each run directory is locked by the
    # process that trains it (a worker), so the study locks only its own directory
    with run_dir_lock(root, "study"):
        for run in runs:  # read again under the lock: a study that held it may have finished runs
            run.status, run.detail = run_state(run.directory, run.recipe_hash)
        echo(describe(runs, root, brief=True))
        try:
            execute(runs, jobs=jobs, echo=echo,
                    after_each=lambda: write_study_report(study, runs, root, with_plots=False))
        finally:  # also after an interruption: the tables show what is finished
            summary = write_study_report(study, runs, root)
    echo(f"study report: {root / 'study.md'}")
    failed = [r for r in runs if r.outcome in (FAILED, BLOCKED)]
    if failed:
        raise StudyError(
            f"{len(failed)} run{'s' if len(failed) > 1 else ''} did not finish: "
            + "; ".join(f"{r.label}: {r.error}" for r in failed)
            + ". Run the study again to retry them (finished runs are kept)."
        )
    return summary
