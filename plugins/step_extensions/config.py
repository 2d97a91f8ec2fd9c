"""The config classes of the step extensions: what a ``[step_extensions.<label>]`` table may set.

Kept apart from the components, without torch, so that resolving a recipe (``advdistill recipe
show/check``) validates a table without importing the component's module.
"""

from __future__ import annotations

from attrs import define, field

from advdistill.config import as_float, in_range, integer, one_of


@define(frozen=True, kw_only=True)
class AWPConfig:
    #: γ: each layer's perturbation as a fraction of its weight norm (the official code: 0.005 for
    #: TRADES-AWP, 0.01 for AT-AWP)
    gamma: float = field(default=0.005, converter=as_float, validator=in_range(0.0, 1.0, low_open=True))
    #: perturb from this epoch on (the official TRADES-AWP: 10, AT-AWP: 1); earlier steps are plain
    start_epoch: int = field(default=1, validator=integer(1))
    #: the loss the perturbation raises: "objective" (the recipe's [objective], as the official code
    #: uses its base loss) or "total" (the objective plus the aux losses, e.g. IGDM: more student forwards)
    loss: str = field(default="objective", validator=one_of("objective", "total"))
