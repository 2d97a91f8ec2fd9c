"""Evaluation metrics (DESIGN §6); docs/metrics.md gives every definition and report key."""

from advdistill import hookimpl


@hookimpl
def register_metrics(register):
    register("clean", "advdistill_plugins.metrics.accuracy:Clean", summary="clean test accuracy (%)")
    register("pgd", "advdistill_plugins.metrics.accuracy:PGDAccuracy",
             summary="accuracy (%) under PGD; default PGD-20 Linf 8/255 step 2/255 -> key pgd20")
    register("pgd_l2", "advdistill_plugins.metrics.accuracy:PGDL2Accuracy",
             summary="accuracy (%) under PGD-20 L2, ε 128/255 (Table 6) -> key pgd_l2")
    register("pgd_l1", "advdistill_plugins.metrics.accuracy:PGDL1Accuracy",
             summary="accuracy (%) under PGD-20 L1 (sparse L1 descent), ε 12 (Table 6) -> key pgd_l1")
    register("autoattack", "advdistill_plugins.metrics.autoattack:AutoAttackMetric",
             summary="accuracy (%) under AutoAttack (standard Linf 8/255 or a custom attack list)")
    register("grad_alignment", "advdistill_plugins.metrics.gradients:GradAlignment",
             summary="GD = mean ||g_T − g_S||_2 and GC = mean cos(g_T, g_S) of input gradients of CE")
    register("pointwise", "advdistill_plugins.metrics.pointwise:Pointwise",
             summary="mean ||f_T(x+δ) − f_S(x+δ)||_2 for δ = 0, uniform noise, a 20-step inner attack")
    register("transfer", "advdistill_plugins.metrics.transfer:Transfer",
             summary="accuracy (%) on VMI-FGSM examples (16/255) crafted on a surrogate model")
    register("eps_curve", "advdistill_plugins.metrics.eps_curve:EpsCurve",
             summary="PGD-20 and AutoAttack accuracy (%) over a list of ε (Fig. 5)")
    register("linearity", "advdistill_plugins.metrics.linearity:Linearity",
             summary="Taylor remainder share ||f(x+ε) − f(x) − J ε|| / ||f(x+ε) − f(x)|| (forward-mode JVP)")
