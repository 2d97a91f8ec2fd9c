"""The training loop: builds a recipe's components once, then runs epochs of the step.

Run directory (DESIGN §5)::

    recipe.json                      the resolved recipe and its hash
    metrics.jsonl                    one JSON object per log step and per epoch
    checkpoints/last.safetensors     student weights after the latest epoch
    checkpoints/last.state.safetensors   optimizer + RNG state for an exact --resume
    checkpoints/best.safetensors     weights with the best periodic robust accuracy
    report.json, report.md           the final evaluation
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from pathlib import Path
from typing import Any

import torch
from attrs import define

from advdistill import __version__
from advdistill.api import build_labeled, build_student, build_teacher, load_data
from advdistill.engine.checkpoint import (
    atomic_write_text,
    load_training_state,
    load_weights,
    read_metadata,
    save_training_state,
    save_weights,
)
from advdistill.engine.context import StepContext
from advdistill.engine.data import InMemoryLoader, epoch_seed
from advdistill.engine.distributed import all_reduce, barrier, setup, teardown
from advdistill.engine.speed import BF16Teacher, compile_model, optimizer_options, uses_cuda_graphs
from advdistill.errors import CheckpointError, TrainingError
from advdistill.interfaces import Progress
from advdistill.recipe import Recipe, validate_for_training
from advdistill.torch_utils import autocast, capture_rng, module_mode, resolve_device, restore_rng

log = logging.getLogger(__name__)


@define
class StepInfo:
    """What callbacks see after each optimizer step."""

    epoch: int
    step_in_epoch: int
    steps_per_epoch: int
    global_step: int
    loss: torch.Tensor  # device tensor; reading it is a host sync
    lr: float
    logs: dict[str, torch.Tensor]
    #: set on log steps only (the engine synchronises there anyway)
    loss_value: float | None = None
    images_per_s: float | None = None


class Trainer:
    """Trains ``recipe``'s student into ``out_dir``; ``resume`` continues an interrupted run."""

    def __init__(self, recipe: Recipe, out_dir: Path, *, resume: bool = False) -> None:
        validate_for_training(recipe)
        self.recipe, self.out_dir = recipe, Path(out_dir)
        self.cfg = recipe.train
        self.ckpt_dir = self.out_dir / "checkpoints"
        self._check_run_dir(resume)
        self.dist, device_spec = setup(self.cfg.device)
        self.device = resolve_device(device_spec)
        self.amp = self.cfg.amp and self.device.type == "cuda"
        self.channels_last = self.cfg.channels_last and self.device.type == "cuda"
        torch.manual_seed(self.cfg.seed)

        # -- build every component once, before the loop --------------------------------------
        self.splits = load_data(recipe)
        self.info = self.splits.info
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.student = build_student(recipe, self.info).to(self.device, memory_format=memory_format)
        self.teacher = build_teacher(recipe, self.info)
        if self.teacher is not None:
            self.teacher = self.teacher.to(self.device, memory_format=memory_format)
            self._check_teacher()
        self.attack = recipe.attack.build()
        self.objective = recipe.objective.build()
        self.aux = build_labeled(recipe.aux)
        callbacks = build_labeled(recipe.callbacks)
        self.callbacks = dict(sorted(callbacks.items(), key=lambda item: getattr(item[1], "order", 0)))
        self.optimizer = self._make_optimizer()
        self.train_loader = InMemoryLoader(
            self.splits.train_x, self.splits.train_y, batch_size=self.cfg.batch_size, device=self.device,
            shuffle=True, drop_last=self.cfg.drop_last, augment=self.cfg.augment,
            crop_padding=self.cfg.crop_padding, seed=self.cfg.seed, channels_last=self.channels_last,
            rank=self.dist.rank, world_size=self.dist.world_size,
        )
        if len(self.train_loader) == 0:
            raise TrainingError(
                f"train.batch_size = {self.cfg.batch_size} exceeds the {self.splits.train_x.shape[0]} "
                "training images (with drop_last = true no step would run)"
            )
        self.steps_per_epoch = len(self.train_loader)
        if self.cfg.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, self.cfg.max_steps_per_epoch)
        self.attack_generator = torch.Generator(device=self.device)
        # the step's views of the models (speed settings); evaluation keeps the float32 eager ones
        self.attack_student, self.step_teacher = self._step_models()
        # compiled models replaying CUDA graphs keep a step's outputs until the next step is marked
        self.cuda_graphs = uses_cuda_graphs(self.device, self.cfg.compile_mode,
                                            self.cfg.compile or self.cfg.compile_teacher)
        # the loss forwards go through DDP (gradient averaging); attacks use the module without it
        self.forward_student = self.attack_student
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_student = DistributedDataParallel(self.forward_student, device_ids=device_ids)
        teacher_points = [*self.objective.teacher_points()]
        for aux in self.aux.values():
            teacher_points += aux.teacher_points()
        self.teacher_points = tuple(dict.fromkeys(float(c) for c in teacher_points))

        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.start_epoch = 1
        self.best: float | None = None
        self.best_epoch: int | None = None
        if resume and (self.ckpt_dir / "last.safetensors").exists():
            self._restore()

    # -- setup helpers -------------------------------------------------------------------------
    def _check_run_dir(self, resume: bool) -> None:
        last = self.ckpt_dir / "last.safetensors"
        if last.exists() and not resume:
            raise CheckpointError(
                f"{self.out_dir} already holds a run ({last} exists). Pass --resume to continue it, "
                "or choose another --out; nothing was overwritten."
            )
        if resume and last.exists():
            saved = self.out_dir / "recipe.json"
            if saved.exists():
                old = json.loads(saved.read_text()).get("recipe_hash")
                if old is not None and old != self.recipe.hash:
                    raise CheckpointError(
                        f"Cannot resume {self.out_dir}: its recipe.json has hash {old}, but the recipe given "
                        f"now resolves to {self.recipe.hash}. Resume with the same recipe (e.g. "
                        f"`advdistill train {saved} --out {self.out_dir} --resume`) or start a new run."
                    )

    def _check_teacher(self) -> None:
        probe = self.splits.test_x[:2].to(self.device).float().div(255)
        with torch.no_grad():
            out = self.teacher(probe)
        if out.dim() != 2 or out.shape[1] != self.info.num_classes:
            raise CheckpointError(
                f"The teacher returns logits of shape {tuple(out.shape)} on {self.info.name} images, "
                f"but the data set has {self.info.num_classes} classes."
            )

    def _make_optimizer(self) -> torch.optim.Optimizer:
        opt = self.recipe.optim
        params = [p for p in self.student.parameters() if p.requires_grad]
        lr0 = opt.lr(Progress(epoch=1, epochs=self.cfg.epochs))
        impl = optimizer_options(self.cfg.optimizer_impl)
        if opt.kind == "sgd":
            return torch.optim.SGD(
                params, lr=lr0, momentum=opt.momentum, weight_decay=opt.weight_decay, nesterov=opt.nesterov, **impl
            )
        return torch.optim.AdamW(params, lr=lr0, betas=tuple(opt.betas), weight_decay=opt.weight_decay, **impl)

    def _step_models(self) -> tuple[torch.nn.Module, torch.nn.Module | None]:
        """The student and teacher as the training step calls them: compiled / bf16 when asked."""
        cfg, cuda = self.cfg, self.device.type == "cuda"
        if cfg.cudnn_benchmark and cuda:
            torch.backends.cudnn.benchmark = True
        student = compile_model(self.student, cfg.compile_mode) if cfg.compile else self.student
        teacher = self.teacher
        if teacher is not None and cfg.teacher_bf16 and cuda:
            teacher = BF16Teacher(teacher)
        if teacher is not None and cfg.compile_teacher:
            teacher = compile_model(teacher, cfg.compile_mode)
        return student, teacher

    def _restore(self) -> None:
        meta = load_weights(self.ckpt_dir / "last.safetensors", self.student)
        info, rng = load_training_state(self.ckpt_dir / "last.state.safetensors", self.optimizer)
        if meta.get("checkpoint_id") != info.get("checkpoint_id"):
            raise CheckpointError(
                f"{self.ckpt_dir}: last.safetensors and last.state.safetensors come from different saves "
                "(interrupted while writing?). Delete last.state.safetensors to restart from the weights only."
            )
        restore_rng(rng, self.device)
        self.start_epoch = int(info["epoch"]) + 1
        self.best, self.best_epoch = info.get("best"), info.get("best_epoch")
        if self.dist.is_main:
            self._truncate_metrics(int(info["epoch"]))
        log.info("resuming %s after epoch %d", self.out_dir, info["epoch"])

    def _truncate_metrics(self, epoch: int) -> None:
        path = self.out_dir / "metrics.jsonl"
        if path.exists():
            kept = [
                line for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get("epoch", 0) <= epoch
            ]
            atomic_write_text(path, "".join(line + "\n" for line in kept))

    # -- the loop --------------------------------------------------------------------------------
    def fit(self) -> Path:
        """Run the remaining epochs and the final evaluation; returns the run directory."""
        try:
            self._fit()
        finally:
            teardown(self.dist)
        return self.out_dir

    def _fit(self) -> None:
        main = self.dist.is_main  # only rank 0 writes files, runs callbacks and evaluates
        callbacks = list(self.callbacks.values()) if main else []
        if main:
            recipe_json = {**self.recipe.to_dict(), "recipe_hash": self.recipe.hash, "advdistill_version": __version__}
            atomic_write_text(self.out_dir / "recipe.json", json.dumps(recipe_json, indent=2) + "\n")
        for cb in callbacks:
            cb.on_train_start(self)
        for epoch in range(self.start_epoch, self.cfg.epochs + 1):
            for cb in callbacks:
                cb.on_epoch_start(self, epoch)
            record = self.train_epoch(epoch)
            if main:
                for cb in callbacks:
                    cb.on_epoch_end(self, record)
                self._update_best(record)
                # the record goes first: a resume truncates metrics.jsonl to the checkpoint's epoch
                self.append_metrics(record)
                self._save(epoch, improved=record.get("best", False))
            barrier(self.dist)
        for cb in callbacks:
            cb.on_train_end(self)
        if main and self.recipe.eval.at_end:
            self.final_evaluation()
        barrier(self.dist)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        self.student.train()
        self.train_loader.set_epoch(epoch)
        # one random stream per process, so that shards do not share attack starts
        self.attack_generator.manual_seed(epoch_seed(self.cfg.seed, epoch, 2 + self.dist.rank))
        loss_sum = torch.zeros((), device=self.device)
        worst = torch.zeros((), device=self.device)  # NaN counts as +inf: the divergence guard
        started = last_log = time.perf_counter()
        images_since_log = 0
        step = -1
        for step, (x, y) in enumerate(self.train_loader):
            if step >= self.steps_per_epoch:
                break
            progress = Progress(epoch, self.cfg.epochs, step, self.steps_per_epoch)
            lr = self.recipe.optim.lr(progress)
            loss, logs = self.train_step(x, y, progress, lr)
            loss_sum += loss
            worst = torch.maximum(worst, torch.nan_to_num(loss, nan=math.inf))
            images_since_log += x.shape[0]
            info = StepInfo(epoch, step, self.steps_per_epoch, progress.global_step, loss, lr, logs)
            if (step + 1) % self.cfg.log_every == 0 or step + 1 == self.steps_per_epoch:
                now = time.perf_counter()
                info.loss_value = float(all_reduce(loss, self.dist))  # host sync, on log steps only
                info.images_per_s = images_since_log * self.dist.world_size / max(now - last_log, 1e-9)
                last_log, images_since_log = now, 0
                self._guard(float(all_reduce(worst, self.dist, "max")), epoch, step)
                logs = {k: all_reduce(v, self.dist) for k, v in logs.items()}
                if self.dist.is_main:
                    self.append_metrics({
                        "event": "step", "epoch": epoch, "step": progress.global_step, "loss": info.loss_value,
                        "lr": lr, "images_per_s": round(info.images_per_s, 2),
                        **{f"loss/{k}": float(v) for k, v in logs.items()},
                    })
            if self.dist.is_main:
                for cb in self.callbacks.values():
                    cb.on_step_end(self, info)
        steps = step + 1
        loss_sum = all_reduce(loss_sum, self.dist)
        return {
            "event": "epoch", "epoch": epoch, "train_loss": float(loss_sum) / max(steps, 1),
            "lr": self.recipe.optim.lr(Progress(epoch, self.cfg.epochs, 0, self.steps_per_epoch)),
            "seconds": round(time.perf_counter() - started, 3),
        }

    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, progress: Progress, lr: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One optimizer step (DESIGN §3); returns the detached loss and the logged terms."""
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        ctx = StepContext(x, y, student=self.forward_student, teacher=self.step_teacher, progress=progress)
        # 1) inner maximization; the student's BN mode follows train.attack_bn (eval = official codes)
        with module_mode(self.student, self.cfg.attack_bn == "train"), autocast(self.device, self.amp):
            x_adv = self.attack.perturb(
                self.attack_student, x, y, teacher=self.step_teacher, context=ctx, generator=self.attack_generator
            )
        ctx.set_adversarial(x_adv)
        if not self.student.training:  # module_mode restored the modes; this guards a stray eval()
            self.student.train()
        with autocast(self.device, self.amp):
            # 2) every teacher output the losses read, in one batched no-grad forward
            ctx.prefetch_teacher(self.teacher_points)
            # 3) L = L_AD + Σ aux
            loss = self.objective(ctx)
            for label, aux in self.aux.items():
                term = aux(ctx)
                ctx.log(label, term)
                loss = loss + term
        # 4) update; set_to_none frees the gradient memory between steps
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return loss.detach(), ctx.logs

    def _guard(self, worst: float, epoch: int, step: int) -> None:
        limit = self.cfg.max_loss
        if not math.isfinite(worst) or (limit is not None and worst > limit):
            raise TrainingError(
                f"The training loss diverged (reached {worst}) in epoch {epoch} by step {step + 1}. "
                "The last checkpoint before this epoch is kept. Lower the learning rate or an aux weight "
                "(e.g. --set aux.igdm.alpha.end=2), or raise train.max_loss if such values are expected."
            )

    # -- records and checkpoints ---------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def _update_best(self, record: dict[str, Any]) -> None:
        score = record.get("eval", {}).get(self.cfg.best_metric)
        if score is not None and (self.best is None or score > self.best):
            self.best, self.best_epoch = float(score), record["epoch"]
            record["best"] = True

    def _save(self, epoch: int, improved: bool) -> None:
        checkpoint_id = secrets.token_hex(8)
        meta = {
            "epoch": epoch, "recipe_hash": self.recipe.hash, "checkpoint_id": checkpoint_id,
            "model": self.recipe.student.name, "dataset": self.info.name,
            "num_classes": self.info.num_classes, "in_chans": self.info.in_chans,
        }
        save_weights(self.ckpt_dir / "last.safetensors", self.student, meta)
        save_training_state(
            self.ckpt_dir / "last.state.safetensors", self.optimizer,
            {"epoch": epoch, "checkpoint_id": checkpoint_id, "best": self.best, "best_epoch": self.best_epoch},
            capture_rng(self.device),
        )
        if improved:
            save_weights(
                self.ckpt_dir / "best.safetensors", self.student,
                {**meta, "best_metric": self.cfg.best_metric, "best": self.best},
            )

    def final_evaluation(self) -> dict[str, Any]:
        """Evaluate the chosen checkpoint with the recipe's [eval] metrics; writes report.*."""
        from advdistill.evaluation.api import evaluate_run

        return evaluate_run(
            self.out_dir, recipe=self.recipe, student=self.student, teacher=self.teacher, splits=self.splits
        )

    def checkpoint_metadata(self, name: str = "last") -> dict[str, Any]:
        return read_metadata(self.ckpt_dir / f"{name}.safetensors")
