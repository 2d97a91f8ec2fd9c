"""AutoAttack (Croce & Hein 2020) through the upstream ``autoattack`` package or ``pyautoattack``.

The adapter adds nothing to the attack itself: one ``run_standard_evaluation`` call over the
whole (limited) test set, so that AutoAttack batches the still-robust images itself, exactly as
when it is called directly. What it adds around the call: a seed (AutoAttack seeds the global
torch RNG on every batch, so the global RNG state is saved and restored), the number of target
classes capped at C − 1 for data sets with fewer than 10 classes, knobs for quick runs, and
progress (per attack, per batch) from AutoAttack's own log messages.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import random
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor, nn

from advdistill.config import (
    config_to_dict,
)
from advdistill.errors import PluginError
from advdistill.evaluation.batching import auto_batch_size
from advdistill.evaluation.threat import ThreatModel, resolve_threat
from advdistill.interfaces import Metric
from advdistill_plugins.metrics.config import NORMS, AutoAttackConfig

log = logging.getLogger(__name__)


def select_backend(name: str = "auto") -> tuple[str, ModuleType]:
    """The AutoAttack implementation to use: ``("autoattack" | "pyautoattack", module)``.

    ``"auto"`` prefers the upstream package (github.com/fra31/auto-attack) when it is importable.
    """
    if name in ("auto", "autoattack"):
        try:
            return "autoattack", importlib.import_module("autoattack")
        except ImportError as exc:
            if name == "autoattack":
                raise PluginError(
                    "metric 'autoattack': backend = 'autoattack' but the upstream package is not "
                    f"importable ({exc}); install it (pip install git+https://github.com/fra31/auto-attack) "
                    "or use backend = 'pyautoattack' / 'auto'"
                ) from None
    try:
        return "pyautoattack", importlib.import_module("pyautoattack")
    except ImportError as exc:
        raise PluginError(
            f"metric 'autoattack' needs the pyautoattack package (pip install pyautoattack): {exc}"
        ) from None


@contextlib.contextmanager
def preserved_global_rng() -> Iterator[None]:
    """Save and restore every global RNG AutoAttack touches (torch CPU/CUDA, numpy, random)."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        np.random.set_state(np_state)
        random.setstate(py_state)


class _ProgressHandler(logging.Handler):
    """Turns AutoAttack's log lines into a tqdm bar per attack and INFO lines of our logger."""

    _batch = re.compile(r"^(?P<attack>[\w-]+) - (?P<i>\d+)/(?P<n>\d+) - ")

    def __init__(self, label: str, show_bar: bool) -> None:
        super().__init__(logging.DEBUG)
        self.label, self.show_bar = label, show_bar
        self.bar: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        match = self._batch.match(message)
        if match is None:
            if message.startswith("robust accuracy") or message.startswith("initial accuracy"):
                self.close()
            log.log(max(record.levelno, logging.INFO), "%s: %s", self.label, message)
            return
        i, n = int(match["i"]), int(match["n"])
        if self.show_bar:
            if self.bar is None:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=n, desc=f"{self.label} {match['attack']}", leave=False, unit="batch",
                                disable=None)
            self.bar.update(i - self.bar.n)
        log.debug("%s: %s", self.label, message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        super().close()


@contextlib.contextmanager
def _progress(label: str, show_bar: bool) -> Iterator[None]:
    logger = logging.getLogger("auto-attack")
    handler = _ProgressHandler(label, show_bar)
    saved = logger.level, logger.propagate
    # AutoAttack reports at DEBUG; keep those lines away from the root handlers (our handler
    # forwards them to this module's logger instead)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        handler.close()


def _set_apgd_iterations(apgd: Any, n_iter: int) -> None:
    # APGD derives its step-size checkpoints from n_iter in __init__; recompute them as it does
    apgd.n_iter = apgd.n_iter_orig = n_iter
    apgd.n_iter_2 = max(int(0.22 * n_iter), 1)
    apgd.n_iter_min = max(int(0.06 * n_iter), 1)
    apgd.size_decr = max(int(0.03 * n_iter), 1)


def _tune(aa: Any, cfg: AutoAttackConfig, num_classes: int) -> None:
    if cfg.n_iter is not None:
        _set_apgd_iterations(aa.apgd, cfg.n_iter)
        _set_apgd_iterations(aa.apgd_targeted, cfg.n_iter)
        aa.fab.n_iter = cfg.n_iter
    if cfg.n_restarts is not None:
        aa.apgd.n_restarts = cfg.n_restarts
    for attack in (aa.apgd_targeted, aa.fab):
        # AutoAttack's 9 targets suit CIFAR-10; more than C − 1 would index past the classes
        attack.n_target_classes = cfg.n_target_classes or min(attack.n_target_classes, num_classes - 1)
    if cfg.n_queries is not None:
        aa.square.n_queries = cfg.n_queries


def run_autoattack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    cfg: AutoAttackConfig,
    *,
    threat: ThreatModel,
    num_classes: int,
    seed: int,
    batch_size: int,
    device: torch.device,
    label: str = "autoattack",
    show_progress: bool = False,
) -> Tensor:
    """Run AutoAttack at ``threat`` on ``x`` (N, C, H, W) in [0, 1]; returns a bool tensor (N,): still correct.

    One call of the package's ``run_standard_evaluation`` on all N images; the global RNG
    state is the same afterwards as before.
    """
    backend, module = select_backend(cfg.backend)
    norm = NORMS[threat.norm]
    attacks = list(cfg.attacks) if cfg.version == "custom" else None
    with preserved_global_rng(), _progress(label, show_progress):
        if backend == "pyautoattack":
            aa = module.AutoAttack(model, attacks=attacks, device=device, eps=threat.eps, norm=norm,
                                   seed=seed, version=cfg.version)
            _tune(aa, cfg, num_classes)
            _, y_adv = aa.run_standard_evaluation(x, y, batch_size=batch_size)
        else:
            aa = module.AutoAttack(model, norm=norm, eps=threat.eps, seed=seed, verbose=show_progress,
                                   attacks_to_run=attacks or [], version=cfg.version, device=device)
            _tune(aa, cfg, num_classes)
            if "return_labels" in inspect.signature(aa.run_standard_evaluation).parameters:
                _, y_adv = aa.run_standard_evaluation(x, y, bs=batch_size, return_labels=True)
            else:  # releases before return_labels: predict on the returned images
                x_adv = aa.run_standard_evaluation(x, y, bs=batch_size)
                with torch.no_grad():
                    y_adv = torch.cat([model(b).argmax(1) for b in x_adv.split(batch_size)])
    return y_adv.to(y.device) == y


class AutoAttackMetric(Metric):
    """Robust accuracy (%) under AutoAttack; default: standard AA at the run's threat model (the
    recipe's ``[attack]`` norm and ε, else Linf 8/255) → key ``autoattack``.

    ``version = "custom"`` with ``attacks = [...]`` runs a chosen list; ``n_iter``,
    ``n_target_classes``, ``n_queries`` and ``n_restarts`` shorten it for quick checks; ``limit``
    attacks only the first images (``<key>_n`` reports how many; no per-image record then).
    """

    Config = AutoAttackConfig

    @property
    def mean_over_images(self) -> bool:  # type: ignore[override]
        """Sharded over processes unless ``limit``: the first N images of the whole set are attacked in process 0."""
        return self.config.limit is None

    @property
    def key(self) -> str:
        cfg = self.config
        return cfg.key or ("autoattack" if cfg.norm in (None, "linf") else f"autoattack_{cfg.norm}")

    def threat(self, ctx: Any = None) -> ThreatModel:
        """The threat model this metric attacks at in ``ctx``: its own norm/eps, else the run's
        (without a context: the paper's default radius)."""
        return resolve_threat(getattr(ctx, "recipe", None), norm=self.config.norm, eps=self.config.eps)

    def robust_flags(self, ctx: Any, threat: ThreatModel | None = None) -> Tensor:
        """Per test image: still correctly classified after AutoAttack at ``threat`` (default: the
        metric's, :meth:`threat`) (bool, (N,))."""
        cfg = self.config
        x, y = ctx.tensors()
        batch_size = cfg.batch_size or auto_batch_size(ctx.model, x, default=ctx.batch_size, n_examples=len(x))
        return run_autoattack(
            ctx.model, x, y, cfg, threat=threat or self.threat(ctx), num_classes=ctx.num_classes(),
            seed=ctx.seed if cfg.seed is None else cfg.seed,
            batch_size=batch_size, device=ctx.device,
            label=ctx.label or self.key, show_progress=ctx.show_progress,
        )

    def evaluate(self, ctx):
        threat = self.threat(ctx)
        ctx.describe(self.key, threat=threat, attack="autoattack", label=self.config.attack_names(),
                     settings={k: v for k, v in config_to_dict(self.config).items() if k not in ("norm", "eps")})
        limit = self.config.limit
        if limit is None or limit >= ctx.n_examples:
            flags = self.robust_flags(ctx, threat)
            ctx.record(self.key, flags)
            return {self.key: 100.0 * flags.sum().item() / ctx.n_examples}
        # a prefix only: per-example records cover every evaluated image, so none is written
        prefix = attrs.evolve(ctx, images=ctx.images[:limit], labels=ctx.labels[:limit], records={})
        flags = self.robust_flags(prefix, threat)
        return {self.key: 100.0 * flags.sum().item() / limit, f"{self.key}_n": limit}
