"""Track local linearity during training (to redraw the paper's Fig. 2b from metrics.jsonl)."""

from __future__ import annotations

import torch

from advdistill.engine.data import InMemoryLoader
from advdistill.interfaces import Callback
from advdistill.torch_utils import module_mode, no_param_grad
from advdistill.val_split import require_val
from advdistill_plugins.callbacks.config import LinearityTrackerConfig
from advdistill_plugins.metrics.linearity import LinearityConfig, mean_remainder


class LinearityTracker(Callback):
    """Every ``every`` epochs (and after the last): the Taylor remainder share of the student
    (eval mode, see the ``linearity`` metric) on the first ``limit`` validation images → epoch
    record key ``"linearity"``. Uses its own generator: the training RNG stream is untouched."""

    Config = LinearityTrackerConfig
    requires_val = True

    def on_train_start(self, run):
        require_val(run, "linearity")

    def on_epoch_end(self, run, record):
        cfg = self.config
        epoch = record["epoch"]
        if epoch % cfg.every and epoch != run.epochs:
            return
        metric = LinearityConfig(eps=cfg.eps, normalization=cfg.normalization)
        loader = InMemoryLoader(run.data.val_x, run.data.val_y, batch_size=cfg.batch_size,
                                device=run.device, limit=cfg.limit)
        generator = torch.Generator(device=run.device).manual_seed(cfg.seed)
        with module_mode(run.student, False), no_param_grad(run.student):
            record["linearity"] = mean_remainder(run.student, loader, metric, generator)
