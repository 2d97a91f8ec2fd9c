"""The ema and awp fragments compose with a shipped recipe through `extends`."""

from __future__ import annotations

from pathlib import Path

import advdistill as ad

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_ema_and_awp_fragments_extend_a_shipped_recipe(tmp_path):
    leaf = RECIPES / "cifar10" / "resnet18" / "rslad+igdm.toml"
    recipe_file = tmp_path / "rslad+igdm+ema+awp.toml"
    recipe_file.write_text(
        "schema = 1\n"
        f'extends = ["{leaf}", "{RECIPES / "base" / "ema.toml"}", "{RECIPES / "base" / "awp.toml"}"]\n'
    )
    recipe = ad.load_recipe(recipe_file)
    shipped = ad.load_recipe(leaf)
    assert recipe.callbacks["ema"].config.decay == 0.999 and recipe.callbacks["ema"].name == "ema"
    awp = recipe.step_extensions["awp"].config
    assert (awp.gamma, awp.start_epoch, awp.loss) == (0.005, 10, "objective")
    # everything else is the shipped recipe's
    assert recipe.objective.to_json() == shipped.objective.to_json() and recipe.aux.keys() == shipped.aux.keys()
    assert set(recipe.callbacks) == set(shipped.callbacks) | {"ema"}
