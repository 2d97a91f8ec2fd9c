"""Weights & Biases: the recipe as config, every logged number, the final report in the summary
(``pip install 'advdistill[wandb]'``). ``mode = "offline"`` (or ``WANDB_MODE=offline``) needs no
network and no account: ``wandb sync RUN/wandb/offline-run-*`` uploads the run later.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from advdistill.components import import_optional
from advdistill_plugins.callbacks.config import WandbConfig
from advdistill_plugins.callbacks.tracking import Tracker, report_files, report_scalars, resolve_in_run

REQUIREMENT = "advdistill[wandb]"


class WandbLogger(Tracker):
    """A W&B run per training run (the same run id on --resume): config = the resolved recipe,
    history = every logged number, summary = the final report; report.json/.md saved with it."""

    Config = WandbConfig
    tracker = "wandb"
    requires_packages: ClassVar[dict[str, str]] = {"wandb": REQUIREMENT}

    def start(self, run: Any, previous: Any) -> dict[str, Any]:
        wandb = import_optional("wandb", requirement=REQUIREMENT, user="callback 'wandb'")
        cfg = self.config
        run_id = (previous or {}).get("id") or secrets.token_hex(4)
        folder = resolve_in_run(run, cfg.dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=cfg.project, entity=cfg.entity, name=cfg.name or run.recipe.name, id=run_id, resume="allow",
            dir=str(folder), mode=cfg.mode, reinit="create_new",  # a process may train several runs
            # console="off": the training's own output stays as it is (W&B would wrap stdout/stderr)
            settings=wandb.Settings(console="off"),
        )
        return {"id": self.run.id, "project": cfg.project, "mode": self.run.settings.mode, "dir": str(folder)}

    def log_recipe(self, run: Any, resumed: bool) -> None:
        self.run.config.update(run.recipe.to_dict(), allow_val_change=True)
        self.run.config.update({"recipe_hash": run.recipe.hash}, allow_val_change=True)

    def log_scalars(self, scalars: Any, step: int) -> None:
        self.run.log(dict(scalars), step=step)

    def finish(self, run: Any) -> None:
        if run.report:
            self.run.summary.update(report_scalars(run.report))
        for path in report_files(run):
            if path.suffix in (".json", ".md"):
                self.run.save(str(path), base_path=str(run.out_dir), policy="now")
        self.run.finish()
