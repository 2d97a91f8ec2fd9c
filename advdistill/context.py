"""The per-step context that objectives and aux losses read from.

It holds the batch, the adversarial example and a cache of model outputs at points
``x + c·δ`` (``δ = x_adv − x``), so that losses sharing a forward pass (IGDM's
``f(x + βδ)`` with β = 1 is the base method's ``f(x_adv)``) compute it once. The student
sees each point in a forward of its own: in train mode its BatchNorm layers normalise with
the statistics of the batch they see, and two points in one batch would share them (the
official codes call the student once per point). The teacher, in eval mode, gets every
point it is asked for in one batched forward, which changes nothing but the speed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from advdistill.progress import Progress


class StepContext:
    """Batch, perturbation and cached logits of one training step.

    :param x: clean images (B, C, H, W) in [0, 1].
    :param y: labels (B,).
    :param student: the student as the loss should call it (train mode; DDP-wrapped if any).
    :param teacher: the frozen teacher or None.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        *,
        student: nn.Module,
        teacher: nn.Module | None,
        progress: Progress,
    ) -> None:
        self.x, self.y = x, y
        self.student, self.teacher = student, teacher
        self.progress = progress
        self.x_adv: Tensor | None = None
        self._delta: Tensor | None = None
        self._student_cache: dict[float, Tensor] = {}
        self._teacher_cache: dict[float, Tensor] = {}
        #: detached loss terms for logging, e.g. {"igdm": tensor}; read only on log steps
        self.logs: dict[str, Tensor] = {}

    # -- the perturbation -------------------------------------------------------------------
    def set_adversarial(self, x_adv: Tensor) -> None:
        """Record the inner maximization's result; student outputs computed before are dropped."""
        self.x_adv = x_adv.detach()
        self._delta = None
        self._student_cache.clear()
        self._teacher_cache = {c: v for c, v in self._teacher_cache.items() if c == 0.0}

    @property
    def delta(self) -> Tensor:
        """``δ = x_adv − x`` (detached)."""
        if self.x_adv is None:
            raise RuntimeError("δ is not known before the attack has run (set_adversarial)")
        if self._delta is None:
            self._delta = self.x_adv - self.x
        return self._delta

    def point(self, c: float) -> Tensor:
        """The input ``x + c·δ``; exactly ``x`` for c = 0 and exactly ``x_adv`` for c = 1."""
        if c == 0.0:
            return self.x
        if c == 1.0 and self.x_adv is not None:
            return self.x_adv
        return self.x + c * self.delta

    def fresh(self, student: nn.Module | None = None) -> StepContext:
        """A new context over the same batch and ``x_adv``: the teacher's cached outputs are shared
        (the teacher does not change), the student's are not (its weights may have), nor the logs.

        :param student: the student the new context calls (default: this context's).
        """
        other = StepContext(self.x, self.y, student=self.student if student is None else student,
                            teacher=self.teacher, progress=self.progress)
        other.x_adv, other._delta = self.x_adv, self._delta
        other._teacher_cache = self._teacher_cache  # the same dict: a point computed by either is shared
        return other

    # -- cached forwards --------------------------------------------------------------------
    def student_logits(self, *coeffs: float) -> Any:
        """Student logits (float32, with grad) at ``x + c·δ`` for each ``c``.

        Each point not yet cached is its own forward (train-mode BatchNorm statistics never
        mix points). Returns one tensor for one coefficient, else a tuple in the order asked.
        """
        return self._logits(self.student, self._student_cache, coeffs, grad=True, batched=False)

    def teacher_logits(self, *coeffs: float) -> Any:
        """Teacher logits (float32, no grad) at ``x + c·δ``; missing points in one batched call."""
        if self.teacher is None:
            raise RuntimeError("this loss needs a teacher, but the recipe has no [teacher]")
        return self._logits(self.teacher, self._teacher_cache, coeffs, grad=False, batched=True)

    def prefetch_teacher(self, coeffs: Iterable[float]) -> None:
        """Compute the teacher at all ``coeffs`` (one batched forward) ahead of the losses."""
        coeffs = tuple(dict.fromkeys(float(c) for c in coeffs))
        if coeffs and self.teacher is not None:
            self.teacher_logits(*coeffs)

    def _logits(
        self, model: nn.Module, cache: dict[float, Tensor], coeffs: tuple, *, grad: bool, batched: bool
    ) -> Any:
        # called several times per training step: the common cases (one point, cached) stay cheap
        missing = [c for c in dict.fromkeys(coeffs) if c not in cache]
        if missing:
            track = grad and torch.is_grad_enabled()
            for group in ([missing] if batched else [[c] for c in missing]):
                inputs = [self.point(c) for c in group]
                batch = inputs[0] if len(inputs) == 1 else torch.cat(inputs)
                if track:
                    out = model(batch).float()
                else:
                    with torch.no_grad():
                        out = model(batch).float()
                if len(group) == 1:
                    cache[group[0]] = out
                else:
                    cache.update(zip(group, out.split(self.x.shape[0])))
        if len(coeffs) == 1:
            return cache[coeffs[0]]
        return tuple(cache[c] for c in coeffs)

    def log(self, name: str, value: Tensor) -> None:
        """Record a detached loss term for the log (no host synchronisation)."""
        self.logs[name] = value.detach()
