"""Our own checkpoints as teachers: a run's student becomes the next run's teacher."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from advdistill.components import build_from_table
from advdistill.errors import CheckpointError, RecipeError
from advdistill.interfaces import TeacherLoader
from advdistill.recipe.loading import damaged, read_file
from advdistill_plugins.teachers.config import CheckpointTeacherConfig


class CheckpointTeacher(TeacherLoader):
    """Loads weights saved by ``advdistill train`` into their architecture; frozen, eval mode."""

    Config = CheckpointTeacherConfig

    def _architecture(self, path: Path) -> dict[str, Any]:
        if self.config.model is not None:
            return dict(self.config.model)
        recipe_json = path.parent.parent / "recipe.json"
        if not recipe_json.exists():
            raise RecipeError(
                f"[teacher] path = {self.config.path!r} is not inside a run directory (no {recipe_json}); "
                "say which architecture it is: model = {kind = \"...\", ...}"
            )
        student = read_file(recipe_json).get("student")
        if not isinstance(student, dict) or not isinstance(student.get("kind"), str):
            raise damaged(recipe_json, "no [student] table naming the teacher's architecture")
        return dict(student)

    def _path(self) -> Path:
        path = Path(os.path.expandvars(os.path.expanduser(self.config.path)))
        if not path.exists():
            raise CheckpointError(
                f"[teacher] checkpoint not found: {path}. Train the teacher first (advdistill train ...) "
                "or fix [teacher] path."
            )
        return path

    def check_files(self) -> None:
        self._architecture(self._path())  # the weights, and the run's recipe.json naming their architecture

    def load(self, *, num_classes, in_chans):
        # torch is imported here, not at the top: `recipe check` looks for the file without it
        from advdistill.engine.checkpoint import load_weights
        from advdistill.torch_utils import freeze

        path = self._path()
        model = build_from_table("model", self._architecture(path)).build(num_classes=num_classes, in_chans=in_chans)
        load_weights(path, model)
        return freeze(model)
