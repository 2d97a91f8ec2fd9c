"""Registration module of the example plugin: cheap to import (no torch)."""

from advdistill import hookimpl


@hookimpl
def register_aux(register):
    register("alp", "advdistill_example.alp:LogitPairing",
             summary="adversarial logit pairing: weight * mean ||f_S(x_adv) - f_S(x)||^2")
