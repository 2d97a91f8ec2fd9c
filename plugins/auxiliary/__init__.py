"""Auxiliary losses added to a base objective: IGDM."""

from advdistill import hookimpl
from advdistill_plugins.traits import declaring_traits

_CONFIG = "advdistill_plugins.auxiliary.config"


@hookimpl
def register_aux(register):
    register = declaring_traits(register)
    register("igdm", "advdistill_plugins.auxiliary.igdm:IGDM", config=f"{_CONFIG}:IGDMConfig",
             summary="IGDM: T(α)·D(f_S(x+βδ) − f_S(x−γδ), f_T(x+βδ) − f_T(x−γδ))",
             traits={"requires_teacher": True})
