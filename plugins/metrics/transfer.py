"""Transfer (black-box) robustness: VMI-FGSM examples crafted on a surrogate (the paper's Table 6)."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import nn

from advdistill.components import build_from_table
from advdistill.config import config_to_dict
from advdistill.errors import RecipeError
from advdistill.evaluation.threat import FROM_DEFAULT, FROM_METRIC, PAPER_EPS, ThreatModel, run_threat
from advdistill.interfaces import Metric
from advdistill.torch_utils import freeze
from advdistill_plugins.attacks.vmi_fgsm import VMIFGSM, VMIFGSMConfig
from advdistill_plugins.metrics.config import TransferConfig


class Transfer(Metric):
    """Accuracy (%) on VMI-FGSM examples (ε twice the run's Linf ε — the paper's 16/255 at 8/255 —,
    10 steps, N = 20, β = 1.5, μ = 1) crafted on a surrogate model → key ``transfer_vmi_fgsm``."""

    mean_over_images = True

    Config = TransferConfig

    def threat(self, ctx: Any = None) -> ThreatModel:
        """The Linf ball of the examples: ``eps`` if given, else twice the run's Linf ε (16/255 otherwise)."""
        if self.config.eps is not None:
            return ThreatModel("linf", self.config.eps, FROM_METRIC)
        run = run_threat(getattr(ctx, "recipe", None))
        if run is not None and run.norm == "linf":
            return run.scaled(2.0)
        return ThreatModel("linf", 2 * PAPER_EPS["linf"], FROM_DEFAULT)

    def attack(self, threat: ThreatModel | None = None) -> VMIFGSM:
        """The VMI-FGSM attack at ``threat`` (default: :meth:`threat` without a run: 16/255)."""
        fields = attrs.fields_dict(VMIFGSMConfig)
        settings = {name: getattr(self.config, name) for name in fields}
        settings["eps"] = (threat or self.threat()).eps
        return VMIFGSM(VMIFGSMConfig(**settings))

    def surrogate(self, ctx: Any) -> nn.Module:
        """The surrogate model, frozen, in eval mode, on the evaluation device."""
        spec = self.config.surrogate
        if spec == "teacher":
            if ctx.teacher is None:
                raise RecipeError(
                    "metric 'transfer': surrogate = \"teacher\" but the recipe has no [teacher] table"
                )
            return ctx.teacher
        model = build_from_table("teacher", spec).load(num_classes=ctx.num_classes(), in_chans=int(ctx.images.shape[1]))
        return freeze(model).to(ctx.device)

    def evaluate(self, ctx):
        threat = self.threat(ctx)
        surrogate, attack = self.surrogate(ctx), self.attack(threat)
        generator = ctx.generator(stream=6)
        correct = []
        for x, y in ctx.batches(self.config.key):
            x_adv = attack.perturb(surrogate, x, y, generator=generator)
            with torch.no_grad():
                correct.append(ctx.model(x_adv).argmax(1) == y)
        flags = torch.cat(correct)
        ctx.record(self.config.key, flags)
        ctx.describe(self.config.key, threat=threat, attack="transfer", label="VMI-FGSM (transfer)",
                     settings={k: v for k, v in config_to_dict(attack.config).items() if k != "seed"})
        return {self.config.key: 100.0 * flags.sum().item() / ctx.n_examples}
