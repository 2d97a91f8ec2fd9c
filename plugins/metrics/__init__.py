"""Evaluation metrics."""

from advdistill import hookimpl


@hookimpl
def register_metrics(register):
    register("clean", "advdistill_plugins.metrics.accuracy:Clean", summary="clean test accuracy (%)")
    register("pgd", "advdistill_plugins.metrics.accuracy:PGDAccuracy",
             summary="accuracy (%) under PGD; default PGD-20 Linf 8/255 step 2/255 -> key pgd20")
    register("grad_alignment", "advdistill_plugins.metrics.gradients:GradAlignment",
             summary="GD = mean ||g_T − g_S||_2 and GC = mean cos(g_T, g_S) of input gradients of CE")
