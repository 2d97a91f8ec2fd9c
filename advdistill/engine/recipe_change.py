"""``train --resume --allow-recipe-change``: which recipe keys a resumed run may change.

A run continued with other hyper-parameters is no longer an exact resume, but it is often what
is needed: a lower learning rate after a divergence, more epochs for a finished run, another
IGDM weight. Those keys may change; anything that changes what is trained or on what (data,
student, teacher, attack, objective, the set of aux losses and callbacks, the optimizer kind,
seed, batching, augmentation) may not — a new run (``--init-from``) is the way there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from advdistill.config import ScheduledValue
from advdistill.errors import CheckpointError

#: dotted recipe keys (and whole tables) a resume with --allow-recipe-change may change
ALLOWED = (
    "name", "description",
    "optim.lr", "optim.momentum", "optim.nesterov", "optim.weight_decay", "optim.betas",
    "train.epochs", "train.grad_clip", "train.max_loss", "train.log_every",
    "train.device", "train.compile", "train.amp", "train.channels_last", "train.dist_timeout_min",
    "eval", "callbacks.progress",
)


def differences(old: Any, new: Any, prefix: str = "") -> dict[str, list[Any]]:
    """The dotted keys where two resolved recipes differ, ``{key: [old, new]}``.

    Tables are compared key by key; anything else (a number replaced by a schedule table
    included) is one change at its key.
    """
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: dict[str, list[Any]] = {}
        for key in sorted(set(old) | set(new), key=str):
            out.update(differences(old.get(key), new.get(key), f"{prefix}{key}."))
        return out
    return {} if old == new else {prefix.rstrip("."): [old, new]}


def aux_weight_keys(recipe: Any) -> list[str]:
    """``aux.<label>.<field>`` for every schedule-valued parameter of the recipe's aux losses."""
    keys = []
    for label, ref in recipe.aux.items():
        config = ref.config
        if config is None or not attrs.has(type(config)):
            continue
        keys += [
            f"aux.{label}.{a.alias or a.name}" for a in attrs.fields(type(config))
            if isinstance(getattr(config, a.name), ScheduledValue)
        ]
    return keys


def _allowed(key: str, extra: list[str]) -> bool:
    return any(key == a or key.startswith(a + ".") for a in (*ALLOWED, *extra))


def recipe_changes(old: Mapping[str, Any], new_recipe: Any, *, where: str) -> dict[str, list[Any]]:
    """The changed keys ``{key: [old, new]}`` between a run's resolved recipe and ``new_recipe``.

    :raises CheckpointError: a changed key is not one a resume may change (named, with the allowed ones).
    """
    changed = differences(dict(old), new_recipe.to_dict())
    extra = [k for k in aux_weight_keys(new_recipe) if k.split(".")[1] in old.get("aux", {})]
    refused = [key for key in changed if not _allowed(key, extra)]
    if refused:
        shown = ", ".join(f"{k} ({changed[k][0]!r} -> {changed[k][1]!r})" for k in refused[:6])
        more = f" (+{len(refused) - 6} more)" if len(refused) > 6 else ""
        allowed = ", ".join([*ALLOWED, "aux.<label>.<weight> (schedule-valued aux parameters)"])
        raise CheckpointError(
            f"Cannot resume {where} with this recipe, even with --allow-recipe-change: it changes {shown}{more}, "
            f"which would train something else. A resume may change: {allowed}. To train the changed recipe "
            f"from the run's weights, start a new run: `advdistill train RECIPE --init-from "
            f"{where}/checkpoints/last.safetensors --out NEW_DIR`."
        )
    return changed
