"""The config classes of the auxiliary losses: what an ``[aux.<label>]`` table may set.

Kept apart from the components, without torch, so that resolving a recipe (``advdistill recipe
show/check``) validates a table without importing the component's module.
"""

from __future__ import annotations

from attrs import define, field

from advdistill.config import ScheduledValue, as_float, in_range, one_of, scheduled


@define(frozen=True, kw_only=True)
class IGDMConfig:
    #: T(α): the weight, a schedule; default α·epoch/E with α = 20 (epoch counted from 1)
    alpha: ScheduledValue = scheduled({"kind": "linear", "start": 0.0, "end": 20.0}, low=0.0)
    #: β: the first point is x + β·δ (β = 1 reuses the base method's forwards of x_adv)
    beta: float = field(default=1.0, converter=as_float, validator=in_range(0.0))
    #: γ: the second point is x − γ·δ
    gamma: float = field(default=1.0, converter=as_float, validator=in_range(0.0))
    #: D: "kl" = KL(softmax(ΔT/τ) ‖ softmax(ΔS/τ)) batchmean; "l1"/"l2" = mean |·| / mean (·)² of ΔS − ΔT
    distance: str = field(default="kl", validator=one_of("kl", "l1", "l2"))
    #: τ of the "kl" distance
    temperature: float = field(default=1.0, converter=as_float, validator=in_range(0.0, low_open=True))
