"""Fabricated RobustBench-layout checkpoints: random weights under RobustBench's key names,
saved the way RobustBench's files are (a ``.pt`` with a ``state_dict`` of ``module.`` keys)
or as ``.safetensors``."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

TINY_WRN = {"kind": "wideresnet", "depth": 10, "widen_factor": 1}
TINY_DM = {"kind": "dm_wideresnet", "depth": 10, "width": 1}


BN_SCALES = ("running_var", "bn1.weight", "bn2.weight", "batchnorm_0.weight", "batchnorm_1.weight")


def random_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """``model``'s state_dict with every entry replaced by seeded random values of its shape."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            out[key] = torch.randint(0, 1000, value.shape, generator=g, dtype=value.dtype)
        elif key.endswith(BN_SCALES):
            out[key] = 0.5 + torch.rand(value.shape, generator=g)
        else:
            scale = value.float().std().item() if value.numel() > 1 and value.float().std() > 0 else 0.1
            out[key] = torch.randn(value.shape, generator=g) * scale
    return out


def layout_file(model_dir: Path, name: str, dataset: str = "cifar10", suffix: str = ".pt",
                threat_model: str = "Linf") -> Path:
    path = Path(model_dir) / dataset / threat_model / f"{name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_robustbench_pt(path: Path, state: dict[str, torch.Tensor], wrapper: str = "state_dict",
                        prefix: str = "module.", **extra) -> Path:
    """``torch.save({wrapper: {prefix + key: tensor}, **extra})`` as RobustBench's files are."""
    inner = {prefix + k: v for k, v in state.items()}
    torch.save({wrapper: inner, **extra} if wrapper else inner, path)
    return path


def save_safetensors(path: Path, state: dict[str, torch.Tensor]) -> Path:
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path
