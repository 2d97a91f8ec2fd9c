"""What a metric plugin receives: the model under test, its teacher, and the test data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

import attrs
import torch
from attrs import define, field
from torch import Tensor, nn

from advdistill.engine.data import InMemoryLoader
from advdistill.evaluation.threat import ThreatModel, resolve_threat

T = TypeVar("T")


@define(kw_only=True)
class EvalContext:
    """The model under evaluation (eval mode, frozen) and its test data.

    :ivar model: maps images in [0, 1] to logits.
    :ivar teacher: the recipe's teacher (frozen) or None.
    :ivar recipe: the resolved recipe, when known (metrics such as ``pointwise`` read its attack).
    :ivar records: per-image results the metric recorded (:meth:`record`), collected by the runner
        into ``per_example.safetensors``.
    :ivar threats: what the metric said about its robust keys (:meth:`describe`): the threat model
        and the attack, collected by the runner into report.json's ``metric_info``.
    """

    model: nn.Module
    images: Tensor  # uint8 (N, C, H, W)
    labels: Tensor  # int64 (N,)
    device: torch.device
    batch_size: int = 256
    teacher: nn.Module | None = None
    recipe: Any = None
    seed: int = 0
    show_progress: bool = True
    label: str = ""
    records: dict[str, Tensor] = field(factory=dict)
    threats: dict[str, dict[str, Any]] = field(factory=dict)
    #: prepended to the keys recorded through this context (see :meth:`scoped`)
    record_prefix: str = ""

    @property
    def n_examples(self) -> int:
        return int(self.images.shape[0])

    def record(self, key: str, flags: Tensor) -> None:
        """Record which images were correct (clean) / robust (attacks) for report key ``key``.

        ``flags``: bool (or 0/1) of shape (N,), one per evaluated image in the order of
        :meth:`batches` / :meth:`tensors`. They are stored in the evaluation's
        ``per_example.safetensors``, so that two runs can be compared image by image.
        """
        flags = torch.as_tensor(flags).detach()
        if tuple(flags.shape) != (self.n_examples,):
            raise ValueError(f"per-image flags for {key!r} have shape {tuple(flags.shape)}; "
                             f"expected ({self.n_examples},), one per evaluated image")
        self.records[self.record_prefix + key] = flags.to("cpu", torch.bool)

    def threat(self, *, norm: str | None = None, eps: float | None = None) -> ThreatModel:
        """The threat model of a robust metric: ``norm``/``eps`` where given, else the run's (the
        recipe's ``[attack]`` norm and ε; the paper's radius for another norm or without one)."""
        return resolve_threat(self.recipe, norm=norm, eps=eps)

    def describe(self, key: str, *, threat: ThreatModel, attack: str, settings: Mapping[str, Any] | None = None,
                 label: str | None = None) -> None:
        """Say what robust key ``key`` (a report key, or a per-image record key) measured: its threat
        model, the attack (``"pgd"``, ``"autoattack"``, ``"transfer"``, ... — the sanity checks
        compare AutoAttack with PGD at the same threat model) and the attack's settings (for
        ``"pgd"``: the ``pgd`` attack's parameters, which the ``more_steps`` check re-runs).

        report.json carries it beside the number (``metric_info``), so that a robust number never
        travels without its ε and norm; ``label`` is how reports name the attack (e.g. "APGD-CE +
        APGD-T").
        """
        entry: dict[str, Any] = {"norm": threat.norm, "eps": float(threat.eps), "source": threat.source,
                                 "attack": attack}
        if label:
            entry["label"] = label
        if settings is not None:
            entry["settings"] = dict(settings)
        self.threats[self.record_prefix + key] = entry

    def scoped(self, prefix: str) -> EvalContext:
        """This context, recording (and describing) under ``prefix + key`` (into the same records)."""
        return attrs.evolve(self, record_prefix=self.record_prefix + prefix)

    def generator(self, stream: int = 0) -> torch.Generator:
        """A fresh generator on the device, seeded from the context's seed and ``stream``."""
        return torch.Generator(device=self.device).manual_seed(self.seed * 1_000_003 + stream)

    def batches(self, desc: str | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """Test batches (float images in [0, 1], labels) on the device, in a fixed order."""
        loader = InMemoryLoader(self.images, self.labels, batch_size=self.batch_size, device=self.device)
        yield from self.progress(loader, desc=desc, unit="batch")

    def progress(self, iterable: Iterable[T], *, desc: str | None = None, total: int | None = None,
                 unit: str = "it") -> Iterator[T]:
        """``iterable`` with a tqdm bar when progress is shown (and stderr is a terminal)."""
        if not self.show_progress:
            yield from iterable
            return
        from tqdm.auto import tqdm

        # disable=None: no bar when stderr is not a terminal (CI logs, pipes)
        yield from tqdm(iterable, desc=desc or self.label or "eval", total=total, leave=False, unit=unit,
                        disable=None)

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All test images as one float tensor (N, C, H, W) in [0, 1] and labels (N,), on the device.

        For attacks that batch internally (AutoAttack keeps only the still-robust images).
        """
        return self.images.to(self.device).float().div_(255.0), self.labels.to(self.device, dtype=torch.long)

    def num_classes(self) -> int:
        """The number of classes the model predicts (one forward of one test image)."""
        with torch.no_grad():
            x = self.images[:1].to(self.device).float().div_(255.0)
            return int(self.model(x).shape[1])
