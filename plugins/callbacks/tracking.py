"""What the experiment trackers (tensorboard, mlflow, wandb) share: the numbers they log and their names,
the tracked run's id kept in the run directory for resumes, and the callback events they act on.

Names and x axis (the same in every tracker; docs/tracking.md):

- log steps (``train.log_every``): ``loss``, ``loss/<term>`` (e.g. ``loss/igdm``), ``lr``,
  ``images_per_s`` — the numbers of ``metrics.jsonl``'s step records;
- each epoch: ``epoch/train_loss``, ``epoch/lr``, ``epoch/seconds``, the periodic evaluation as
  ``eval/<key>`` (``eval/pgd``, ``eval/ema/pgd``), other numbers callbacks add as ``epoch/<key>``
  (``epoch/linearity``);
- once, at x = 0: the teacher audit as ``teacher_audit/<key>``;
- after the final evaluation: ``test/<checkpoint>/<metric>`` (``test/last/pgd20``, ``test/ema/autoattack``).

x is the number of optimizer steps done (an epoch's record: ``epoch × steps_per_epoch``).
"""

from __future__ import annotations

import abc
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from advdistill.interfaces import Callback, RunState, StepInfo
from advdistill.io import atomic_write_text

log = logging.getLogger(__name__)

#: the run directory's record of the tracked runs (one entry per tracker kind), read on --resume
TRACKING_FILE = "tracking.json"
#: epoch-record entries that are not measurements
_NOT_LOGGED = {"event", "epoch", "best"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def flatten(data: Mapping[str, Any], prefix: str = "", sep: str = "/") -> dict[str, Any]:
    """Nested tables as one level, keys joined with ``sep``; lists and other leaves are kept as they are."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}{sep}", sep))
        else:
            out[name] = value
    return out


def numbers(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers among the leaves of ``data`` (booleans, strings and lists left out), keys joined by ``/``."""
    return {k: v for k, v in ((k, _number(v)) for k, v in flatten(data, prefix).items()) if v is not None}


def recipe_params(recipe: Any) -> dict[str, str]:
    """The resolved recipe as flat parameters (``train.epochs`` -> ``"2"``), plus ``recipe_hash``."""
    params = {}
    for key, value in flatten(recipe.to_dict(), sep=".").items():
        params[key] = value if isinstance(value, str) else json.dumps(value)
    params["recipe_hash"] = recipe.hash
    return params


def recipe_text(recipe: Any) -> str:
    """The resolved recipe as indented JSON, with its hash."""
    return json.dumps({**recipe.to_dict(), "recipe_hash": recipe.hash}, indent=2)


def step_scalars(step: StepInfo) -> dict[str, float]:
    """The numbers of a log step (empty on other steps: reading the device tensors there would synchronise)."""
    if step.loss_value is None:
        return {}
    scalars = {"loss": step.loss_value, "lr": step.lr}
    if step.images_per_s is not None:
        scalars["images_per_s"] = step.images_per_s
    scalars.update({f"loss/{name}": float(value) for name, value in step.logs.items()})
    return scalars


def epoch_scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """An epoch record's numbers: ``eval/<key>`` for the periodic evaluation, ``epoch/<key>`` for the rest."""
    scalars = numbers(record.get("eval") or {}, "eval/")
    rest = {k: v for k, v in record.items() if k not in _NOT_LOGGED and k != "eval"}
    scalars.update(numbers(rest, "epoch/"))
    return scalars


def report_scalars(report: Mapping[str, Any]) -> dict[str, float]:
    """The final evaluation's numbers per checkpoint: ``test/<checkpoint>/<metric>``."""
    rows = report.get("checkpoints") or {}
    if not rows:  # a report of one checkpoint without rows (older formats)
        name = (report.get("checkpoint") or {}).get("name", "last")
        rows = {name: {"metrics": report.get("metrics") or {}}}
    scalars: dict[str, float] = {}
    for name, row in rows.items():
        scalars.update(numbers(row.get("metrics") or {}, f"test/{name}/"))
    return scalars


def read_tracking(out_dir: Path) -> dict[str, Any]:
    """``tracking.json`` of a run directory (empty when absent or unreadable)."""
    try:
        data = json.loads((Path(out_dir) / TRACKING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_tracking(out_dir: Path, tracker: str, entry: Mapping[str, Any]) -> None:
    """Record ``tracker``'s run (its id, where it logs) in ``tracking.json``, atomically."""
    data = read_tracking(out_dir)
    data[tracker] = dict(entry)
    atomic_write_text(Path(out_dir) / TRACKING_FILE, json.dumps(data, indent=2) + "\n")


class Tracker(Callback, abc.ABC):
    """A callback that sends a run's numbers to an experiment tracker (subclasses: one per tracker).

    On the main process only. A fresh run starts a tracked run and records its id in
    ``tracking.json``; ``--resume`` continues the tracked run recorded there. A failure to log a
    number is a warning (``metrics.jsonl`` holds everything); a failure to start is an error.
    """

    #: the tracker's name: its entry in tracking.json and in messages
    tracker: ClassVar[str] = ""
    order = 90  # after the callbacks that add to the epoch record (periodic_eval, linearity), before progress

    def __init__(self, config: Any = None) -> None:
        super().__init__(config or type(self).Config())
        self.active = False
        self._failures = 0

    # -- what each tracker implements -------------------------------------------------------------
    @abc.abstractmethod
    def start(self, run: RunState, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        """Open the tracked run (``previous``: the tracking.json entry to continue); returns the new entry."""

    @abc.abstractmethod
    def log_recipe(self, run: RunState, resumed: bool) -> None:
        """Record the resolved recipe (parameters, text)."""

    @abc.abstractmethod
    def log_scalars(self, scalars: Mapping[str, float], step: int) -> None:
        """Log numbers at x = ``step``."""

    @abc.abstractmethod
    def finish(self, run: RunState) -> None:
        """Upload the final files and close the tracked run."""

    # -- the callback events -----------------------------------------------------------------------
    def on_train_start(self, run: RunState) -> None:
        if not run.is_main:
            return
        resumed = run.epoch > 0  # a run without a checkpoint starts over, and so does its tracked run
        previous = read_tracking(run.out_dir).get(self.tracker) if resumed else None
        entry = self.start(run, previous)
        self.active = True
        write_tracking(run.out_dir, self.tracker, entry)
        self.log_recipe(run, resumed)
        if run.teacher_audit and not resumed:
            self._log(numbers(run.teacher_audit, "teacher_audit/"), 0)

    def on_step_end(self, run: RunState, step: StepInfo) -> None:
        if self.active and step.loss_value is not None:
            self._log(step_scalars(step), step.global_step + 1)

    def on_epoch_end(self, run: RunState, record: dict[str, Any]) -> None:
        if self.active:
            self._log(epoch_scalars(record), record["epoch"] * run.steps_per_epoch)

    def on_train_end(self, run: RunState) -> None:
        if not self.active:
            return
        if run.report:
            self._log(report_scalars(run.report), run.epochs * run.steps_per_epoch)
        self.finish(run)
        self.active = False
        if self._failures:
            log.warning("%s: %d logging call(s) failed during the run (metrics.jsonl has every number)",
                        self.tracker, self._failures)

    def _log(self, scalars: Mapping[str, float], step: int) -> None:
        if not scalars:
            return
        try:
            self.log_scalars(scalars, step)
        except Exception as exc:  # a tracker's hiccup must not end a training run
            self._failures += 1
            if self._failures == 1:
                log.warning("%s: logging failed (%s: %s); training continues, further failures are counted",
                            self.tracker, type(exc).__name__, exc)


def resolve_in_run(run: RunState, path: str) -> Path:
    """``path`` relative to the run directory (absolute paths stay)."""
    candidate = Path(path).expanduser()
    return (candidate if candidate.is_absolute() else Path(run.out_dir) / candidate).resolve()


def report_files(run: RunState) -> list[Path]:
    """The run's report files that exist: recipe.json, metrics.jsonl, report.json, report.md,
    per_example.safetensors and plots/*.png."""
    out = Path(run.out_dir)
    files = [out / name for name in ("recipe.json", "metrics.jsonl", "report.json", "report.md",
                                     "per_example.safetensors")]
    files += sorted((out / "plots").glob("*.png")) if (out / "plots").is_dir() else []
    return [path for path in files if path.is_file()]


def checkpoint_files(run: RunState, which: str) -> list[Path]:
    """``"best"``: best.safetensors (last.safetensors when the run has no best); ``"all"``: every
    weights file of checkpoints/ (not the training state); ``"none"``: nothing."""
    folder = Path(run.out_dir) / "checkpoints"
    if which == "none" or not folder.is_dir():
        return []
    if which == "best":
        for name in ("best", "last"):
            if (folder / f"{name}.safetensors").is_file():
                return [folder / f"{name}.safetensors"]
        return []
    return sorted(p for p in folder.glob("*.safetensors") if not p.name.endswith(".state.safetensors"))
