"""Teacher loaders."""

from advdistill import hookimpl


@hookimpl
def register_teachers(register):
    register("checkpoint", "advdistill_plugins.teachers.checkpoint:CheckpointTeacher",
             summary="a model trained by advdistill (safetensors checkpoint of a run) as the teacher")
