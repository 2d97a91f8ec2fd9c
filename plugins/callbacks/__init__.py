"""Training callbacks."""

from advdistill import hookimpl
from advdistill_plugins.traits import declaring_traits

_CONFIG = "advdistill_plugins.callbacks.config"


@hookimpl
def register_callbacks(register):
    register = declaring_traits(register)
    register("progress", "advdistill_plugins.callbacks.progress:ProgressBar", config=f"{_CONFIG}:ProgressConfig",
             summary="progress bar per epoch: it/s, loss, ETA (tqdm)")
    register("periodic_eval", "advdistill_plugins.callbacks.periodic_eval:PeriodicEval",
             config=f"{_CONFIG}:PeriodicEvalConfig",
             summary="every K epochs: clean and PGD accuracy on the validation split; decides best",
             traits={"requires_val": True})
    register("linearity", "advdistill_plugins.callbacks.linearity_tracker:LinearityTracker",
             config=f"{_CONFIG}:LinearityTrackerConfig",
             summary="every K epochs: Taylor remainder share on validation images -> record 'linearity'",
             traits={"requires_val": True})
    register("ema", "advdistill_plugins.callbacks.ema:EMA", config=f"{_CONFIG}:EMAConfig",
             summary="exponential moving average of the weights (BN statistics too) -> checkpoints/ema.safetensors")
    register("tensorboard", "advdistill_plugins.callbacks.tensorboard_logger:TensorBoardLogger",
             config=f"{_CONFIG}:TensorBoardConfig",
             summary="TensorBoard scalars of every logged term and evaluation, the recipe as text (extra: tensorboard)",
             traits={"requires_packages": {"tensorboard": "advdistill[tensorboard]"}})
    register("mlflow", "advdistill_plugins.callbacks.mlflow_logger:MLflowLogger", config=f"{_CONFIG}:MLflowConfig",
             summary="MLflow run: recipe as params, metrics, report files and checkpoint as artifacts (extra: mlflow)",
             traits={"requires_packages": {"mlflow": "advdistill[mlflow]"}})
    register("wandb", "advdistill_plugins.callbacks.wandb_logger:WandbLogger", config=f"{_CONFIG}:WandbConfig",
             summary="Weights & Biases run (offline mode needs no network): config, metrics, report (extra: wandb)",
             traits={"requires_packages": {"wandb": "advdistill[wandb]"}})
