"""Evaluation metrics (DESIGN §6); docs/metrics.md gives every definition and report key."""

from advdistill import hookimpl
from advdistill_plugins.traits import declaring_traits

_CONFIG = "advdistill_plugins.metrics.config"


@hookimpl
def register_metrics(register):
    register = declaring_traits(register)
    register("clean", "advdistill_plugins.metrics.accuracy:Clean", config=False, summary="clean test accuracy (%)")
    register("pgd", "advdistill_plugins.metrics.accuracy:PGDAccuracy", config=f"{_CONFIG}:PGDMetricConfig",
             summary="accuracy (%) under PGD-20 at the run's threat model ([attack] norm and ε, step ε/4) -> key pgd20")
    register("pgd_l2", "advdistill_plugins.metrics.accuracy:PGDL2Accuracy", config=f"{_CONFIG}:PGDL2MetricConfig",
             summary="accuracy (%) under PGD-20 L2, ε 128/255 or an L2 run's own (Table 6) -> key pgd_l2")
    register("pgd_l1", "advdistill_plugins.metrics.accuracy:PGDL1Accuracy", config=f"{_CONFIG}:PGDL1MetricConfig",
             summary="accuracy (%) under PGD-20 L1 (sparse L1 steps), ε 12 or an L1 run's own (Table 6) -> key pgd_l1")
    register("autoattack", "advdistill_plugins.metrics.autoattack:AutoAttackMetric",
             config=f"{_CONFIG}:AutoAttackConfig",
             summary="accuracy (%) under AutoAttack (standard, or a custom attack list) at the run's threat model")
    register("grad_alignment", "advdistill_plugins.metrics.gradients:GradAlignment", config=False,
             summary="GD = mean ||g_T − g_S||_2 and GC = mean cos(g_T, g_S) of input gradients of CE",
             traits={"requires_teacher": True})
    register("pointwise", "advdistill_plugins.metrics.pointwise:Pointwise", config=f"{_CONFIG}:PointwiseConfig",
             summary="mean ||f_T(x+δ) − f_S(x+δ)||_2 for δ = 0, uniform noise, a 20-step inner attack",
             traits={"requires_teacher": True})
    register("transfer", "advdistill_plugins.metrics.transfer:Transfer", config=f"{_CONFIG}:TransferConfig",
             summary="accuracy (%) on VMI-FGSM examples (2 × the run's ε: 16/255 at 8/255) crafted on a surrogate")
    register("eps_curve", "advdistill_plugins.metrics.eps_curve:EpsCurve", config=f"{_CONFIG}:EpsCurveConfig",
             summary="PGD-20 and APGD-CE + APGD-T accuracy (%) at 1…2 × the run's ε (Fig. 5), survivors only")
    register("linearity", "advdistill_plugins.metrics.linearity:Linearity", config=f"{_CONFIG}:LinearityConfig",
             summary="Taylor remainder share ||f(x+ε) − f(x) − J ε|| / ||f(x+ε) − f(x)|| (forward-mode JVP)")
