"""Running a shipped data base recipe for one step on fabricated files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import advdistill as ad

DATA_BASES = Path(__file__).resolve().parents[3] / "recipes" / "base" / "data"


@pytest.fixture
def train_data_base(tmp_path):
    """``train(name, root)``: one PGD-AT step of a small CNN on ``recipes/base/data/<name>.toml``'s
    data read from ``root`` (all other settings of the base kept, but a validation split of 2
    images: the fabricated files are tiny), then the periodic evaluation; returns the last epoch
    record of ``metrics.jsonl``."""

    def train(name: str, root: Path, *overrides: str) -> dict:
        recipe = ad.load_recipe(DATA_BASES / f"{name}.toml", [
            f"data.root={json.dumps(str(root))}", 'student={kind = "small_cnn", widths = [4], hidden = 8}',
            "attack.kind=pgd", "attack.steps=1", 'objective={kind = "pgd_at"}', "train.epochs=1",
            "train.batch_size=4", "train.max_steps_per_epoch=1", "train.device=cpu", "eval.at_end=false",
            "callbacks.periodic_eval.steps=1", "data.val_size=2", *overrides,
        ])
        run = ad.train(recipe, tmp_path / "run")
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [r for r in records if "eval" in r][-1]

    return train
