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
    register("ema", "advdistill_plugins.callbacks.ema:EMA",
             summary="exponential moving average of the weights (BN statistics too) -> checkpoints/ema.safetensors")
    register("tensorboard", "advdistill_plugins.callbacks.tensorboard_logger:TensorBoardLogger",
             summary="TensorBoard scalars of every logged term and evaluation, the recipe as text (extra: tensorboard)")
    register("mlflow", "advdistill_plugins.callbacks.mlflow_logger:MLflowLogger",
             summary="MLflow run: recipe as params, metrics, report files and checkpoint as artifacts (extra: mlflow)")
    register("wandb", "advdistill_plugins.callbacks.wandb_logger:WandbLogger",
             summary="Weights & Biases run (offline mode needs no network): config, metrics, report (extra: wandb)")
