"""Cheap robust evaluation during training, on the validation split (never on test images)."""

from __future__ import annotations

from advdistill.components import build
from advdistill.errors import TrainingError
from advdistill.evaluation.runner import run_metrics
from advdistill.evaluation.threat import FROM_ATTACK, resolve_threat
from advdistill.interfaces import Callback
from advdistill.val_split import require_val
from advdistill_plugins.callbacks.config import PeriodicEvalConfig


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
