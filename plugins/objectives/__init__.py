"""Base training objectives (L_AT / L_AD)."""

from advdistill import hookimpl


@hookimpl
def register_objectives(register):
    register("pgd_at", "advdistill_plugins.objectives.pgd_at:PGDAT",
             summary="Madry PGD-AT: CE(f_S(x_adv), y)")
    register("trades", "advdistill_plugins.objectives.trades:TRADES",
             summary="TRADES: CE(S(x), y) + β·KL(S(x) || S(x_adv)), β = 6")
    register("mart", "advdistill_plugins.objectives.mart:MART",
             summary="MART: BCE(S(x_adv), y) + β·KL(S(x) || S(x_adv))·(1 − p_y(x)), β = 6")
    register("ard", "advdistill_plugins.objectives.ard:ARD",
             summary="ARD: α·τ²·KL(T(x)/τ || S(x_adv)/τ) + (1 − α)·CE(S(x), y), τ = 30, α = 1")
    register("iad", "advdistill_plugins.objectives.iad:IAD",
             summary="IAD-I / IAD-II: teacher trusted by p_T(y|x_adv)^β, the student itself by the rest")
    register("rslad", "advdistill_plugins.objectives.rslad:RSLAD",
             summary="RSLAD: 5/6 KL(T(x) || S(x_adv)) + 1/6 KL(T(x) || S(x)), official elementwise form")
    register("adaad", "advdistill_plugins.objectives.adaad:AdaAD",
             summary="AdaAD: α·KL(T(x_adv) || S(x_adv)) + (1 − α)·KL(T(x) || S(x)), α = 1")
