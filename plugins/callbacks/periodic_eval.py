"""Cheap robust evaluation during training, on the validation split (never on test images)."""

from __future__ import annotations

from attrs import define, field
from attrs.validators import instance_of

from advdistill.components import build
from advdistill.config import integer, optional, optional_float, positive_or_none
from advdistill.errors import TrainingError
from advdistill.evaluation.runner import run_metrics
from advdistill.evaluation.threat import FROM_ATTACK, resolve_threat
from advdistill.interfaces import Callback
from advdistill.val_split import require_val


@define(frozen=True, kw_only=True)
class PeriodicEvalConfig:
    #: evaluate every this many epochs (and after the last)
    every: int = field(default=1, validator=integer(1))
    #: the first ``limit`` test images (the same every time)
    limit: int | None = field(default=None, validator=optional(integer(1)))
    #: PGD steps
    steps: int = field(default=10, validator=integer(1))
    #: PGD radius; None: the run's threat model (the recipe's [attack] eps and norm, else Linf 8/255)
    eps: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    #: None: the recipe's [attack] step_size, else ε/4
    step_size: float | None = field(default=None, converter=optional_float, validator=positive_or_none)
    #: None: the recipe's [eval] batch_size
    batch_size: int | None = field(default=None, validator=optional(integer(1)))
    #: also evaluate the models other callbacks keep beside the student (the ema callback's averaged
    #: weights): keys "<name>/clean", "<name>/pgd", e.g. "ema/pgd"
    others: bool = field(default=True, validator=instance_of(bool))


class PeriodicEval(Callback):
    """Every ``every`` epochs (and after the last): clean and PGD-``steps`` accuracy on the first
    ``limit`` validation images (held out of the training set, ``[data] val_size``); writes
    ``{"clean", "pgd"}`` into the epoch record's ``"eval"``, where ``train.best_metric`` (default
    ``"pgd"``) picks ``checkpoints/best.safetensors``; the same for each model of ``run.models``
    (e.g. ``"ema/pgd"``, the ema callback's averaged weights). Test images are never read here."""

    Config = PeriodicEvalConfig
    requires_val = True

    def on_train_start(self, run):
        require_val(run, "periodic_eval")
        cfg = self.config
        threat = resolve_threat(run.recipe, eps=cfg.eps)
        step = cfg.step_size
        if step is None and threat.source == FROM_ATTACK:  # the training attack's step at its own radius
            step = getattr(run.recipe.attack.config, "step_size", None)
        self.metrics = {
            "clean": build("metric", "clean"),
            "pgd": build("metric", "pgd", norm=threat.norm, eps=threat.eps, step_size=step, steps=cfg.steps, key="pgd"),
        }

    def on_epoch_end(self, run, record):
        epoch = record["epoch"]
        if epoch % self.config.every and epoch != run.epochs:
            return
        models = {"": run.student, **({f"{name}/": m for name, m in run.models.items()} if self.config.others else {})}
        results = {}
        for prefix, model in models.items():
            values, errors, _ = run_metrics(
                model, run.data.val_x, run.data.val_y, self.metrics, device=run.device,
                batch_size=self.config.batch_size or run.recipe.eval.batch_size, limit=self.config.limit,
                show_progress=False,
            )
            if errors:
                details = "; ".join(f"{prefix}{label}: {message}" for label, message in errors.items())
                raise TrainingError(f"the periodic evaluation after epoch {epoch} failed ({details})")
            results.update({f"{prefix}{key}": value for key, value in values.items()})
        record["eval"] = results
