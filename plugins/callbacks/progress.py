"""Training progress: a tqdm bar per epoch on a terminal, one line per epoch otherwise."""

from __future__ import annotations

import sys

from advdistill.interfaces import Callback
from advdistill_plugins.callbacks.config import ProgressConfig


class ProgressBar(Callback):
    """Epoch E/N, steps, it/s, loss (updated on log steps, so it costs no extra GPU sync), ETA.

    When stderr is not a terminal (CI logs, ``nohup``) it prints one summary line per epoch.
    """

    Config = ProgressConfig
    order = 100  # after periodic evaluation, so that the epoch summary shows its results

    def __init__(self, config=None):
        super().__init__(config or ProgressConfig())
        self.bar = None

    def on_epoch_start(self, run, epoch):
        if not sys.stderr.isatty():
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=run.steps_per_epoch, desc=f"epoch {epoch}/{run.epochs}",
                        leave=self.config.leave, unit="it", dynamic_ncols=True)

    def on_step_end(self, run, step):
        if self.bar is None:
            return
        self.bar.update(1)
        if step.loss_value is not None:
            self.bar.set_postfix(loss=f"{step.loss_value:.4f}", lr=f"{step.lr:.3g}", refresh=False)

    def on_epoch_end(self, run, record):
        parts = [f"loss={record['train_loss']:.4f}"]
        parts += [f"{k}={v:.2f}" for k, v in record.get("eval", {}).items()]
        if "linearity" in record:
            parts.append(f"linearity={record['linearity']:.4f}")
        if self.bar is not None:
            self.bar.set_postfix_str(" ".join(parts))
            self.bar.close()
            self.bar = None
        else:
            print(f"[{run.recipe.name}] epoch {record['epoch']}/{run.epochs} "
                  f"{' '.join(parts)} ({record['seconds']:.1f} s)", file=sys.stderr, flush=True)
