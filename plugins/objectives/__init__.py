"""Base training objectives (L_AT / L_AD)."""

from advdistill import hookimpl


@hookimpl
def register_objectives(register):
    register("pgd_at", "advdistill_plugins.objectives.pgd_at:PGDAT",
             summary="Madry PGD-AT: CE(f_S(x_adv), y)")
    register("rslad", "advdistill_plugins.objectives.rslad:RSLAD",
             summary="RSLAD: 5/6 KL(T(x) || S(x_adv)) + 1/6 KL(T(x) || S(x)), official elementwise form")
