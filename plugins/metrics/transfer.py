"""Transfer (black-box) robustness: VMI-FGSM examples crafted on a surrogate (the paper's Table 6)."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from attrs import define, field
from attrs.validators import instance_of
from torch import nn

from advdistill.components import build_from_table
from advdistill.config import component_table
from advdistill.errors import RecipeError
from advdistill.interfaces import Metric
from advdistill.torch_utils import freeze
from advdistill_plugins.attacks.vmi_fgsm import VMIFGSM, VMIFGSMConfig


def _surrogate(value: Any) -> Any:
    if value == "teacher":
        return value
    return component_table(
        "teacher", '{kind = "checkpoint", path = "runs/resnet50/checkpoints/last.safetensors"}'
    )(value)


@define(frozen=True, kw_only=True)
class TransferConfig(VMIFGSMConfig):
    #: the model the examples are crafted on: a teacher table, e.g. {kind = "checkpoint",
    #: path = "...", model = {kind = "timm:resnet50"}}, or "teacher" for the recipe's teacher
    surrogate: Any = field(converter=_surrogate)
    #: report key
    key: str = field(default="transfer_vmi_fgsm", validator=instance_of(str))


class Transfer(Metric):
    """Accuracy (%) on VMI-FGSM examples (ε 16/255, 10 steps, N = 20, β = 1.5, μ = 1) crafted on a
    surrogate model → key ``transfer_vmi_fgsm``."""

    mean_over_images = True

    Config = TransferConfig

    def attack(self) -> VMIFGSM:
        fields = attrs.fields_dict(VMIFGSMConfig)
        return VMIFGSM(VMIFGSMConfig(**{name: getattr(self.config, name) for name in fields}))

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
        surrogate, attack = self.surrogate(ctx), self.attack()
        generator = ctx.generator(stream=6)
        correct = []
        for x, y in ctx.batches(self.config.key):
            x_adv = attack.perturb(surrogate, x, y, generator=generator)
            with torch.no_grad():
                correct.append(ctx.model(x_adv).argmax(1) == y)
        flags = torch.cat(correct)
        ctx.record(self.config.key, flags)
        return {self.config.key: 100.0 * flags.sum().item() / ctx.n_examples}
