"""Scalar schedules over training progress (loss weights, learning rates)."""

from advdistill import hookimpl


@hookimpl
def register_schedules(register):
    module = "advdistill_plugins.schedules.shapes"
    register("constant", f"{module}:Constant", summary="value, at every step")
    register("linear", f"{module}:Linear",
             summary="start + (end − start)·epoch/E, epoch from 1 (IGDM's T(α) = α·epoch/E)")
    register("step", f"{module}:Step", summary="value·gamma^(milestones passed): piecewise-constant LR")
    register("cosine", f"{module}:Cosine", summary="cosine from start to end over training")
