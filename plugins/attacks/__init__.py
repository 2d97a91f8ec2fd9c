"""Method-agnostic attacks: PGD (training and evaluation), VMI-FGSM (transfer), and the iterative
base every inner maximization builds on. A method's own inner maximization lives with its
objective in ``advdistill_plugins.methods``."""

from advdistill import hookimpl
from advdistill_plugins.traits import declaring_traits

_CONFIG = "advdistill_plugins.attacks.config"


@hookimpl
def register_attacks(register):
    register = declaring_traits(register)
    register("pgd", "advdistill_plugins.attacks.pgd:PGD", config=f"{_CONFIG}:PGDConfig",
             summary="PGD on the student's cross-entropy (Madry et al.); Linf, L2 or L1")
    register("vmi_fgsm", "advdistill_plugins.attacks.vmi_fgsm:VMIFGSM", config=f"{_CONFIG}:VMIFGSMConfig",
             summary="VMI-FGSM (variance-tuned momentum FGSM, Linf 16/255): for transfer attacks")
