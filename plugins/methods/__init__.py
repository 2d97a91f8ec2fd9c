"""Training methods, one module each: a method's own inner maximization (when it has one) and
its objective, registered together. Method-agnostic attacks (PGD, VMI-FGSM, the iterative base)
live in ``advdistill_plugins.attacks``."""

from advdistill import hookimpl
from advdistill_plugins.traits import declaring_traits

_CONFIG = "advdistill_plugins.methods.config"
#: the inner maximizations take the iterative attacks' parameters with the TRADES-family start
_INNER_CONFIG = "advdistill_plugins.attacks.config:NormalStartConfig"


@hookimpl
def register_attacks(register):
    register = declaring_traits(register)
    register("trades_kl", "advdistill_plugins.methods.trades:TRADESInner", config=_INNER_CONFIG,
             summary="TRADES inner max: KL(p_S(x) || p_S(x')) from x + 0.001·N(0,1)")
    register("mart", "advdistill_plugins.methods.mart:MARTInner", config=_INNER_CONFIG,
             summary="MART inner max: CE on the student from x + 0.001·N(0,1), start not clamped")
    register("rslad_kl", "advdistill_plugins.methods.rslad:RSLADInner", config=_INNER_CONFIG,
             summary="RSLAD inner max: KL(p_T(x) || p_S(x')), the teacher's clean soft label as target",
             traits={"requires_teacher": True})
    register("adaad_kl", "advdistill_plugins.methods.adaad:AdaADInner", config=_INNER_CONFIG,
             summary="AdaAD inner max: KL(p_T(x') || p_S(x')), teacher in the loop (not detached)",
             traits={"requires_teacher": True})


@hookimpl
def register_objectives(register):
    register = declaring_traits(register)
    register("pgd_at", "advdistill_plugins.methods.pgd_at:PGDAT", config=False,
             summary="Madry PGD-AT: CE(f_S(x_adv), y)")
    register("trades", "advdistill_plugins.methods.trades:TRADES", config=f"{_CONFIG}:TRADESConfig",
             summary="TRADES: CE(S(x), y) + β·KL(S(x) || S(x_adv)), β = 6")
    register("mart", "advdistill_plugins.methods.mart:MART", config=f"{_CONFIG}:MARTConfig",
             summary="MART: BCE(S(x_adv), y) + β·KL(S(x) || S(x_adv))·(1 − p_y(x)), β = 6")
    register("ard", "advdistill_plugins.methods.ard:ARD", config=f"{_CONFIG}:ARDConfig",
             summary="ARD: α·τ²·KL(T(x)/τ || S(x_adv)/τ) + (1 − α)·CE(S(x), y), τ = 30, α = 1",
             traits={"requires_teacher": True})
    register("iad", "advdistill_plugins.methods.iad:IAD", config=f"{_CONFIG}:IADConfig",
             summary="IAD-I / IAD-II: teacher trusted by p_T(y|x_adv)^β, the student itself by the rest",
             traits={"requires_teacher": True})
    register("rslad", "advdistill_plugins.methods.rslad:RSLAD", config=f"{_CONFIG}:RSLADConfig",
             summary="RSLAD: 5/6 KL(T(x) || S(x_adv)) + 1/6 KL(T(x) || S(x)), official elementwise form",
             traits={"requires_teacher": True})
    register("adaad", "advdistill_plugins.methods.adaad:AdaAD", config=f"{_CONFIG}:AdaADConfig",
             summary="AdaAD: α·KL(T(x_adv) || S(x_adv)) + (1 − α)·KL(T(x) || S(x)), α = 1",
             traits={"requires_teacher": True})
