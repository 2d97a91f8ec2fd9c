"""Where training stands: the one argument every schedule is a function of."""

from __future__ import annotations

from attrs import define


@define(frozen=True)
class Progress:
    """Where training stands; schedules are functions of it.

    ``epoch`` counts from 1 (the official loops run ``range(1, E + 1)``), so the first
    epoch of an ``E``-epoch run has ``epoch / epochs == 1 / E`` and the last exactly 1.
    """

    epoch: int
    epochs: int
    step_in_epoch: int = 0
    steps_per_epoch: int = 1

    @property
    def global_step(self) -> int:
        return (self.epoch - 1) * self.steps_per_epoch + self.step_in_epoch

    @property
    def continuous_epoch(self) -> float:
        """Epochs completed so far, counting the current step (for per-step schedules)."""
        return (self.epoch - 1) + (self.step_in_epoch + 1) / self.steps_per_epoch
