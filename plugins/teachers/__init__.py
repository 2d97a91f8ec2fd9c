"""Teacher loaders (RobustBench files, our own checkpoints) and the `advdistill teacher` commands."""

from advdistill import hookimpl
from advdistill_plugins.traits import declaring_traits

_CONFIG = "advdistill_plugins.teachers.config"


@hookimpl
def register_teachers(register):
    register = declaring_traits(register)
    register("checkpoint", "advdistill_plugins.teachers.checkpoint:CheckpointTeacher",
             config=f"{_CONFIG}:CheckpointTeacherConfig",
             summary="a model trained by advdistill (safetensors checkpoint of a run) as the teacher")
    register("robustbench", "advdistill_plugins.teachers.robustbench:RobustBenchTeacher",
             config=f"{_CONFIG}:RobustBenchConfig",
             summary="a RobustBench model-zoo teacher read from {model_dir}/{dataset}/{threat_model}/{name}")


@hookimpl
def register_commands(register):
    register("teacher", "advdistill_plugins.teachers.commands:teacher",
             summary="list the known RobustBench teachers; convert a trusted .pt checkpoint to safetensors")
