"""TensorBoard: scalars of every logged number, the resolved recipe as text.

Needs ``pip install 'advdistill[tensorboard]'``; ``tensorboard --logdir RUN/tensorboard`` shows the run.
"""

from __future__ import annotations

from typing import Any, ClassVar

from advdistill.components import import_optional
from advdistill_plugins.callbacks.config import TensorBoardConfig
from advdistill_plugins.callbacks.tracking import Tracker, recipe_text, resolve_in_run

REQUIREMENT = "advdistill[tensorboard]"


class TensorBoardLogger(Tracker):
    """TensorBoard event files in RUN/tensorboard: loss, loss/<term>, lr, images_per_s, eval/<key>,
    epoch/<key>, teacher_audit/<key>, test/<checkpoint>/<metric>; the recipe as text."""

    Config = TensorBoardConfig
    tracker = "tensorboard"
    requires_packages: ClassVar[dict[str, str]] = {"tensorboard": REQUIREMENT}

    def start(self, run: Any, previous: Any) -> dict[str, Any]:
        tensorboard = import_optional("torch.utils.tensorboard", requirement=REQUIREMENT,
                                      user="callback 'tensorboard'")
        log_dir = resolve_in_run(run, self.config.log_dir)
        # a resume continues in the same folder; TensorBoard drops what the interrupted attempt
        # logged after the checkpoint (steps from purge_step on, in the older event files)
        purge_step = run.epoch * run.steps_per_epoch + 1 if run.epoch else None
        self.writer = tensorboard.SummaryWriter(str(log_dir), purge_step=purge_step)
        return {"log_dir": str(log_dir)}

    def log_recipe(self, run: Any, resumed: bool) -> None:
        tag = f"recipe (resumed after epoch {run.epoch})" if resumed else "recipe"
        # Markdown: a four-space indent keeps the JSON as it is
        text = "\n".join("    " + line for line in recipe_text(run.recipe).splitlines())
        self.writer.add_text(tag, text, global_step=run.epoch * run.steps_per_epoch)

    def log_scalars(self, scalars: Any, step: int) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, global_step=step)

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None:
        super().on_epoch_end(run, record)
        if self.active:  # an epoch's numbers are on disk when it ends (a kill loses no finished epoch)
            self.writer.flush()

    def finish(self, run: Any) -> None:
        self.writer.flush()
        self.writer.close()
