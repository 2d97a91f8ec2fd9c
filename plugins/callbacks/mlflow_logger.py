"""MLflow: the flattened recipe as params, every logged number as metrics, the report files and a
checkpoint as artifacts (``pip install 'advdistill[mlflow]'``). Any tracking URI works: a local
``sqlite:///mlflow.db`` needs no server (MLflow 3 refuses ``file:`` stores unless
``MLFLOW_ALLOW_FILE_STORE=true``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

from advdistill.components import import_optional
from advdistill_plugins.callbacks.config import MLflowConfig
from advdistill_plugins.callbacks.tracking import (
    Tracker,
    checkpoint_files,
    recipe_params,
    report_files,
)

log = logging.getLogger(__name__)
REQUIREMENT = "advdistill[mlflow]"
#: MLflow's limits (older servers accept 500 characters per param value)
_PARAM_CHARS = 500
_PARAMS_PER_CALL = 100
_METRICS_PER_CALL = 1000


class MLflowLogger(Tracker):
    """An MLflow run per training run (continued on --resume): params = the flattened recipe, metrics =
    every logged number, artifacts = recipe.json, metrics.jsonl, report.json/.md, plots, checkpoints."""

    Config = MLflowConfig
    tracker = "mlflow"
    requires_packages: ClassVar[dict[str, str]] = {"mlflow": REQUIREMENT}

    def start(self, run: Any, previous: Any) -> dict[str, Any]:
        import_optional("mlflow", requirement=REQUIREMENT, user="callback 'mlflow'")
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        cfg = self.config
        self.client = MlflowClient(tracking_uri=cfg.tracking_uri)
        self.run_id = None
        if previous and previous.get("run_id"):
            try:
                found = self.client.get_run(previous["run_id"])
            except MlflowException as exc:
                log.warning("mlflow: the run %s recorded in tracking.json is not in %s (%s); starting a new one",
                            previous["run_id"], self.client.tracking_uri, exc)
            else:
                if found.info.lifecycle_stage == "active":
                    self.run_id = found.info.run_id
                    self.client.update_run(self.run_id, status="RUNNING")
        if self.run_id is None:
            experiment = self.client.get_experiment_by_name(cfg.experiment)
            experiment_id = (experiment.experiment_id if experiment is not None else
                             self.client.create_experiment(cfg.experiment, artifact_location=cfg.artifact_location))
            created = self.client.create_run(
                experiment_id, run_name=cfg.run_name or run.recipe.name,
                tags={"advdistill.run_dir": str(run.out_dir), "advdistill.recipe_hash": run.recipe.hash},
            )
            self.run_id = created.info.run_id
        return {"run_id": self.run_id, "tracking_uri": self.client.tracking_uri}

    def log_recipe(self, run: Any, resumed: bool) -> None:
        from mlflow.entities import Param, RunTag

        params = {k: v if len(v) <= _PARAM_CHARS else v[: _PARAM_CHARS - 3] + "..."
                  for k, v in recipe_params(run.recipe).items()}
        tags = []
        if resumed:  # params are immutable: a value changed by --allow-recipe-change goes into a tag
            logged = self.client.get_run(self.run_id).data.params
            tags = [RunTag(f"changed_on_resume.{k}", v) for k, v in params.items() if k in logged and logged[k] != v]
            params = {k: v for k, v in params.items() if k not in logged}
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, max(len(items), len(tags)), _PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=items[start:start + _PARAMS_PER_CALL],
                                  tags=tags[start:start + _PARAMS_PER_CALL])

    def log_scalars(self, scalars: Any, step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, step) for key, value in scalars.items()]
        for start in range(0, len(metrics), _METRICS_PER_CALL):
            self.client.log_batch(self.run_id, metrics=metrics[start:start + _METRICS_PER_CALL])

    def finish(self, run: Any) -> None:
        for path in report_files(run):
            self.client.log_artifact(self.run_id, str(path), artifact_path="plots" if path.suffix == ".png" else None)
        for path in checkpoint_files(run, self.config.checkpoints):
            self.client.log_artifact(self.run_id, str(path), artifact_path="checkpoints")
        self.client.set_terminated(self.run_id, "FINISHED")
