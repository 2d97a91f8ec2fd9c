"""Step extensions: code acting inside the training step, between the attack and the update."""

from advdistill import hookimpl
from advdistill_plugins.traits import declaring_traits

_CONFIG = "advdistill_plugins.step_extensions.config"


@hookimpl
def register_step_extensions(register):
    register = declaring_traits(register)
    register("awp", "advdistill_plugins.step_extensions.awp:AWP", config=f"{_CONFIG}:AWPConfig",
             summary="adversarial weight perturbation (Wu et al. 2020): the update is taken at weights "
                     "perturbed to raise the loss, then the perturbation is removed")
