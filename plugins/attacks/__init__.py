"""Attacks: inner maximizations for training and attacks for evaluation."""

from advdistill import hookimpl


@hookimpl
def register_attacks(register):
    register("pgd", "advdistill_plugins.attacks.pgd:PGD",
             summary="PGD on the student's cross-entropy (Madry et al.); Linf, L2 or L1")
    register("trades_kl", "advdistill_plugins.attacks.at:TRADESInner",
             summary="TRADES inner max: KL(p_S(x) || p_S(x')) from x + 0.001·N(0,1)")
    register("mart", "advdistill_plugins.attacks.at:MARTInner",
             summary="MART inner max: CE on the student from x + 0.001·N(0,1), start not clamped")
    register("rslad_kl", "advdistill_plugins.attacks.distill:RSLADInner",
             summary="RSLAD inner max: KL(p_T(x) || p_S(x')), the teacher's clean soft label as target")
    register("adaad_kl", "advdistill_plugins.attacks.distill:AdaADInner",
             summary="AdaAD inner max: KL(p_T(x') || p_S(x')), teacher in the loop (not detached)")
    register("vmi_fgsm", "advdistill_plugins.attacks.vmi_fgsm:VMIFGSM",
             summary="VMI-FGSM (variance-tuned momentum FGSM, Linf 16/255): for transfer attacks")
