"""Small torch helpers shared by the engine and by plugins (ours and third-party)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def module_mode(model: nn.Module, train: bool | None) -> Iterator[nn.Module]:
    """Put ``model`` in train (True) or eval (False) mode for a block; restore every submodule.

    ``None`` leaves the modes alone. Restoring per submodule keeps deliberately frozen
    layers (e.g. a BatchNorm kept in eval mode) as they were.
    """
    if train is None:
        yield model
        return
    saved = [(m, m.training) for m in model.modules()]
    model.train(train)
    try:
        yield model
    finally:
        # a plain attribute write: nn.Module.__setattr__ costs ~10x more per module, and this
        # runs twice per training step on every submodule
        for module, mode in saved:
            object.__setattr__(module, "training", mode)


@contextlib.contextmanager
def no_param_grad(*models: nn.Module | None) -> Iterator[None]:
    """Turn off ``requires_grad`` of the models' parameters for a block (input-gradient work).

    Only the parameters that require gradients are touched (a frozen teacher costs a walk over
    its modules, nothing more); each is switched back on afterwards, shared ones once.
    """
    switched = [
        p for m in models if m is not None for module in m.modules()
        for p in module._parameters.values() if p is not None and p.requires_grad
    ]
    for p in switched:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in switched:
            p.requires_grad_(True)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode, no parameter gradients: how teachers and surrogates are used."""
    model.eval()
    model.requires_grad_(False)
    return model


class WithBufferCopies(nn.Module):
    """``model`` computing with its own parameters but with copies of its buffers.

    A forward in train mode updates the copies' BatchNorm running statistics, never the
    model's, and gradients reach the model's parameters as usual: a forward that is not a
    training step (e.g. AWP's) leaves the model as it was. The copies are made once, at
    construction, and shared by every forward through this view.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model  # registered: .train()/.eval() reach it
        self._buffers_copy = {name: b.clone() for name, b in model.named_buffers()}

    def forward(self, *args, **kwargs):
        return torch.func.functional_call(self.model, self._buffers_copy, args, kwargs, strict=False)


def resolve_device(spec: str) -> torch.device:
    """``"auto"`` picks CUDA when available; ``"cuda"`` without a GPU is a clear error."""
    from advdistill.errors import RecipeError

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise RecipeError(f"[train] device = {spec!r} is not a device; use 'auto', 'cpu' or 'cuda'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RecipeError(f"[train] device = {spec!r}, but no CUDA GPU is available here; use 'auto' or 'cpu'")
    return device


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when enabled; a no-op elsewhere (CPU runs stay in float32)."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def capture_rng(device: torch.device) -> dict[str, torch.Tensor]:
    """The global torch RNG states (CPU, and the CUDA device's when used)."""
    states = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng(states: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(states["cpu"].to(torch.uint8))
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"].to(torch.uint8), device)
