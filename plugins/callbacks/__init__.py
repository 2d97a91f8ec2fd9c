"""Training callbacks."""

from advdistill import hookimpl


@hookimpl
def register_callbacks(register):
    register("progress", "advdistill_plugins.callbacks.progress:ProgressBar",
             summary="progress bar per epoch: it/s, loss, ETA (tqdm)")
    register("periodic_eval", "advdistill_plugins.callbacks.periodic_eval:PeriodicEval",
             summary="every K epochs: clean and PGD accuracy on the validation split; decides best")
    register("linearity", "advdistill_plugins.callbacks.linearity_tracker:LinearityTracker",
             summary="every K epochs: Taylor remainder share on validation images -> record 'linearity'")
