"""Speed settings of the training step (``[train]`` keys): compilation, the teacher's precision,
the optimizer's implementation. Each is off unless the recipe asks for it."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

#: keyword arguments of torch.optim.SGD/AdamW for each ``[train] optimizer_impl``
_OPTIMIZER_OPTIONS = {"auto": {}, "foreach": {"foreach": True}, "fused": {"fused": True},
                      "for_loop": {"foreach": False}}


def compile_model(model: nn.Module, mode: str) -> nn.Module:
    """``torch.compile`` with static shapes (one graph per batch shape; what CUDA graphs need).

    The compiled module shares its parameters and buffers with ``model``.
    """
    return torch.compile(model, mode=None if mode == "default" else mode, dynamic=False)


def uses_cuda_graphs(device: torch.device, mode: str, compiled: bool) -> bool:
    """Whether compiled models replay CUDA graphs (the modes that use them, on CUDA)."""
    return compiled and device.type == "cuda" and mode in ("reduce-overhead", "max-autotune")


def optimizer_options(impl: str) -> dict[str, Any]:
    """Keyword arguments selecting the optimizer's implementation (``foreach`` / ``fused``)."""
    return dict(_OPTIMIZER_OPTIONS[impl])


class BF16Teacher(nn.Module):
    """A frozen teacher with bf16 conv/linear weights, run under bf16 autocast; float32 logits.

    Under autocast a frozen fp32 teacher's weights are cast to bf16 on *every* forward (the
    autocast cache keeps only weights that require grad); storing them in bf16 once computes
    the same values without those casts. Normalization layers stay float32, as under autocast.
    The wrapped model is a copy: the float32 teacher (used by evaluation) is left as it was.
    """

    def __init__(self, teacher: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(teacher)
        self.train(teacher.training)
        for module in self.model.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                module.to(torch.bfloat16)

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.model(x).float()
