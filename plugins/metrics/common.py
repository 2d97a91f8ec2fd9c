"""Pieces several metrics share: default radii, an optional-positive validator, uniform noise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from attrs.converters import optional
from torch import Tensor, nn

from advdistill.config import as_float, in_range
from advdistill.errors import AdvDistillError

#: the paper's radii (Tables 2 and 6): Linf 8/255, L2 128/255, L1 12
DEFAULT_EPS = {"linf": 8 / 255, "l2": 128 / 255, "l1": 12.0}


#: attrs converter: None stays None, numbers and "8/255" strings become floats
optional_float = optional(as_float)


def positive_or_none(instance: Any, attribute: Any, value: float | None) -> None:
    """attrs validator: None, or a finite number > 0."""
    if value is not None:
        in_range(0.0, 1e6, low_open=True)(instance, attribute, value)


def uniform_perturbation(x: Tensor, eps: float, generator: torch.Generator, *, clamp: bool = True) -> Tensor:
    """δ with δ_i ~ U[−eps, eps] per pixel, shape of ``x``; with ``clamp``, δ is replaced by
    clamp(x + δ, 0, 1) − x so that x + δ is a valid image (the δ actually applied)."""
    delta = (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * eps
    return (x + delta).clamp(0.0, 1.0) - x if clamp else delta


def component_table(kind: str, example: str) -> Callable[[Any], dict[str, Any] | None]:
    """attrs converter for a nested component table ``{kind = "...", ...}`` of ``kind``.

    The table is checked by building the component once (its parameters, not its files), so a
    bad table fails when the recipe is loaded, naming the key; the dict itself is kept.
    """

    def convert(value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
            raise ValueError(f"expected a table naming a registered {kind}, such as {example}; got {value!r}")
        from advdistill.api import build

        params = dict(value)
        name = params.pop("kind")
        try:
            build(kind, name, **params)
        except AdvDistillError as exc:
            raise ValueError(str(exc)) from None
        return dict(value)

    return convert


def input_gradient(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """∇_x CE(f(x_i), y_i) for every example, shape of ``x``, from one backward of the summed loss
    (each example's loss depends only on its own input when the model is in eval mode)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x).float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, [x])
    return grad
