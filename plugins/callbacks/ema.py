"""An exponential moving average (EMA) of the student's weights: ``checkpoints/ema.safetensors``.

Weight averaging is standard in adversarial training (Gowal et al. 2020, "Uncovering the limits
of adversarial training"; Rebuffi et al. 2021, "Fixing data augmentation to improve adversarial
robustness"), and recent robust-distillation code reports averaged students.

What is averaged: every floating-point tensor of the student's ``state_dict`` — the weights
*and* the BatchNorm running statistics, as timm's ``ModelEmaV2/V3`` do — while integer buffers
(``num_batches_tracked``) are copied. The running statistics are averaged rather than recomputed
with ``torch.optim.swa_utils.update_bn`` because the student normalises adversarial examples
during training: recomputing on clean training images would give statistics of another input
distribution, and recomputing on adversarial ones means attacking the averaged model over an
epoch of training data at every evaluation. Averaging them keeps the statistics on the
weights' time scale and on the inputs the student trained on, at no extra cost.

The update is torch's own EMA function (``torch.optim.swa_utils.get_ema_multi_avg_fn``, a
fused ``lerp`` over all tensors). ``AveragedModel`` itself is not used: it compares its update
counter, a device tensor, on the host at every update (two GPU synchronisations per step), and
the training step has none; the counter is kept on the host here.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn

from advdistill.interfaces import Callback
from advdistill_plugins.callbacks.config import EMAConfig

#: the name of the averaged weights: checkpoints/ema.safetensors, RunState.models["ema"], eval keys ema/...
NAME = "ema"


def ema_decay(config: EMAConfig, updates: int) -> float:
    """The decay of the update that follows ``updates`` earlier ones (``updates`` ≥ 1)."""
    if config.warmup == "count":
        return min(config.decay, (1 + updates) / (10 + updates))
    if config.warmup == "power":
        return min(config.decay, 1 - (1 + updates) ** -config.warmup_power)
    return config.decay


class EMA(Callback):
    """Exponential moving average of the student's weights and BatchNorm statistics, every ``every``
    steps; saved as checkpoints/ema.safetensors (resumed exactly), evaluated beside last and best."""

    Config = EMAConfig
    order = -10  # before periodic_eval and the trackers in each event (the average is current by then anyway)

    def __init__(self, config: EMAConfig | None = None) -> None:
        super().__init__(config or EMAConfig())
        #: the averaged student (eval mode, frozen); built by on_train_start
        self.average: torch.nn.Module | None = None
        #: updates so far (kept on the host: the decay is computed without reading the device)
        self.updates = 0

    def on_train_start(self, run: Any) -> None:
        self.average = copy.deepcopy(run.student).eval().requires_grad_(False)
        self.updates = 0
        run.models[NAME] = self.average

    def on_step_end(self, run: Any, step: Any) -> None:
        if (step.global_step + 1) % self.config.every == 0:
            self.update(run.student)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average towards ``model``'s current weights (the first update copies them)."""
        current = model.state_dict()
        averaged, targets = [], []
        for key, value in self.average.state_dict().items():
            source = current[key].to(value.device)
            if value.is_floating_point() and self.updates > 0:
                averaged.append(value)
                targets.append(source)
            else:  # the first update, and integer buffers (num_batches_tracked), take the model's value
                value.copy_(source)
        if averaged:
            get_ema_multi_avg_fn(ema_decay(self.config, self.updates))(averaged, targets, None)
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.average is None:
            return {}
        state = {f"average.{k}": v for k, v in self.average.state_dict().items()}
        return {**state, "updates": torch.tensor(self.updates, dtype=torch.int64)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        weights = {k.removeprefix("average."): v for k, v in state.items() if k.startswith("average.")}
        self.average.load_state_dict(weights, strict=True)
        self.updates = int(state["updates"])

    def weight_exports(self) -> dict[str, torch.nn.Module]:
        return {} if self.average is None else {NAME: self.average}
