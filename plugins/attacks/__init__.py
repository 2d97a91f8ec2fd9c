"""Attacks: inner maximizations for training and attacks for evaluation."""

from advdistill import hookimpl


@hookimpl
def register_attacks(register):
    register("pgd", "advdistill_plugins.attacks.pgd:PGD",
             summary="PGD on the student's cross-entropy (Madry et al.); Linf, L2 or L1")
    register("rslad_kl", "advdistill_plugins.attacks.distill:RSLADInner",
             summary="RSLAD inner max: KL(p_T(x) || p_S(x')), the teacher's clean soft label as target")
