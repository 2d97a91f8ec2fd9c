"""The training loop: builds a recipe's components once, then runs epochs of the step.

Run directory (DESIGN §5)::

    recipe.json                      the resolved recipe and its hash
    metrics.jsonl                    one JSON object per log step and per epoch (first: the teacher audit)
    checkpoints/last.state.safetensors   THE checkpoint: weights + optimizer + RNG state, one atomic file
    checkpoints/last.safetensors     student weights after the latest epoch (exported from the same save)
    checkpoints/best.safetensors     weights with the best periodic robust accuracy on the validation split
    checkpoints/<name>.safetensors   weights a component exports (e.g. ema.safetensors, the ema callback's)
    report.json, report.md           the final evaluation
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import time
from pathlib import Path
from typing import Any

import torch

from advdistill._testhooks import PAUSE_AT, pause_point
from advdistill.components import build_labeled, build_student, build_teacher, load_data, require_files
from advdistill.context import StepContext
from advdistill.engine import metrics_log
from advdistill.engine.checkpoint import (
    load_state_strict,
    load_training_state,
    load_weights,
    read_component_states,
    read_metadata,
    read_tensors,
    remove_stale_temp_files,
    save_training_state,
    save_weights,
)
from advdistill.engine.data import InMemoryLoader, epoch_seed
from advdistill.engine.distributed import all_reduce, barrier, per_process_batch, setup, teardown
from advdistill.engine.metrics_log import keep_records
from advdistill.engine.recipe_change import aux_weight_keys, recipe_changes
from advdistill.engine.speed import BF16Teacher, compile_model, optimizer_options, uses_cuda_graphs
from advdistill.errors import CheckpointError, RecipeError, RunDirectoryError, TrainingError
from advdistill.evaluation.teacher_audit import audit_for_training
from advdistill.interfaces import CheckpointState, Progress, RunState, StepInfo, TrainStep
from advdistill.io import atomic_write_text
from advdistill.recipe import Recipe, validate_for_training
from advdistill.recipe.loading import read_file
from advdistill.rundir import acquire_run_dir_lock, release_run_dir_lock
from advdistill.torch_utils import (
    WithBufferCopies,
    autocast,
    capture_rng,
    module_mode,
    resolve_device,
    restore_rng,
)
from advdistill.val_split import without_test
from advdistill.version import __version__

log = logging.getLogger(__name__)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class Trainer:
    """Trains ``recipe``'s student into ``out_dir``.

    :param resume: continue the run in ``out_dir`` from its checkpoint (exactly), or start it
        over when it has none.
    :param allow_recipe_change: with ``resume``, accept a recipe that differs from the run's in
        the keys of :data:`advdistill.engine.recipe_change.ALLOWED` (lr, epochs, aux weights, ...).
    :param init_from: a weights file (e.g. another run's ``checkpoints/last.safetensors``) to
        start the student from, instead of its random initialisation; the optimizer starts afresh.
    :param init_strict: every tensor of the student must be in ``init_from`` with its shape;
        False loads those that match and reports the rest.
    """

    def __init__(
        self, recipe: Recipe, out_dir: Path, *, resume: bool = False, allow_recipe_change: bool = False,
        init_from: str | Path | None = None, init_strict: bool = True,
    ) -> None:
        validate_for_training(recipe)
        self.recipe, self.out_dir = recipe, Path(out_dir)
        self.cfg = recipe.train
        self.ckpt_dir = self.out_dir / "checkpoints"
        self._locked = False
        # a run refused before it wrote anything leaves no empty directory behind
        self._created_out_dir = not self.out_dir.exists()
        self._allow_recipe_change = allow_recipe_change
        self._init_from = Path(init_from) if init_from is not None else None
        self._init_strict = init_strict
        #: events written into recipe.json's "history" and metrics.jsonl when training starts
        self._events: list[dict[str, Any]] = []
        #: the epoch the checkpoint on disk holds (None: no checkpoint yet)
        self.saved_epoch: int | None = None
        #: a resume of a run that has trained every epoch and been evaluated: fit() does nothing
        self.finished = False
        self.dist, device_spec = setup(self.cfg.device, self.cfg.dist_timeout_min)
        try:
            #: images per step in this process (train.batch_size is the global batch)
            self.batch_size = per_process_batch(self.cfg.batch_size, self.cfg.batch_size_per_process,
                                                self.dist.world_size)
            if self.dist.is_main:
                # before anything is built: an unusable --out or a running run costs nothing
                acquire_run_dir_lock(self.out_dir, "train")
                self._locked = True
                pause_point("train:started")
                self._remove_stale_temp_files()
            self._check_run_dir(resume)
            self.finished = resume and self._is_finished()
            if not self.finished:
                self._build(resume, device_spec)
        except BaseException:
            self.close()
            raise

    def _build(self, resume: bool, device_spec: str) -> None:
        recipe = self.recipe
        self.device = resolve_device(device_spec)
        self.amp = self.cfg.amp and self.device.type == "cuda"
        self.channels_last = self.cfg.channels_last and self.device.type == "cuda"
        torch.manual_seed(self.cfg.seed)

        # -- build every component once, before the loop --------------------------------------
        require_files(recipe)  # a missing teacher file is found before the data set is decoded
        self.splits = load_data(recipe)
        self.info = self.splits.info
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.student = build_student(recipe, self.info).to(self.device, memory_format=memory_format)
        self.teacher = build_teacher(recipe, self.info)
        self.teacher_audit: dict[str, Any] | None = None
        if self.teacher is not None:
            self.teacher = self.teacher.to(self.device, memory_format=memory_format)
            self._check_teacher()
            self.teacher_audit = audit_for_training(recipe, self.teacher, self.splits, self.device)
        self.attack = recipe.attack.build()
        self.objective = recipe.objective.build()
        self.aux = build_labeled(recipe.aux)
        callbacks = build_labeled(recipe.callbacks)
        self.callbacks = dict(sorted(callbacks.items(), key=lambda item: getattr(item[1], "order", 0)))
        extensions = build_labeled(recipe.step_extensions)
        self.step_extensions = dict(sorted(extensions.items(), key=lambda item: getattr(item[1], "order", 0)))
        self.optimizer = self._make_optimizer()
        self.train_loader = InMemoryLoader(
            self.splits.train_x, self.splits.train_y, batch_size=self.batch_size, device=self.device,
            shuffle=True, drop_last=self.cfg.drop_last, augment=self.cfg.augment,
            crop_padding=self.cfg.crop_padding, seed=self.cfg.seed, channels_last=self.channels_last,
            rank=self.dist.rank, world_size=self.dist.world_size,
        )
        if len(self.train_loader) == 0:
            raise TrainingError(
                f"a batch of {self.batch_size * self.dist.world_size} images ({self._batch_text()}) exceeds the "
                f"{self.splits.train_x.shape[0]} training images (with drop_last = true no step would run)"
            )
        self.steps_per_epoch = len(self.train_loader)
        if self.cfg.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, self.cfg.max_steps_per_epoch)
        if self.dist.is_main:
            self._announce_batches()
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
        self.state = RunState(
            recipe=recipe, out_dir=self.out_dir, device=self.device, student=self.student, teacher=self.teacher,
            data=without_test(self.splits), epochs=self.cfg.epochs, steps_per_epoch=self.steps_per_epoch,
            is_main=self.dist.is_main, teacher_audit=self.teacher_audit,
        )
        #: component states read from the checkpoint on a resume, loaded once the callbacks have started
        self._component_states: dict[str, dict[str, torch.Tensor]] | None = None
        self._restored_info: dict[str, Any] = {}
        self.start_epoch = 1
        self.best: float | None = None
        self.best_epoch: int | None = None
        if resume and self._has_checkpoint():
            if self._init_from is not None:
                log.warning("--init-from %s is ignored: %s resumes from its checkpoint", self._init_from, self.out_dir)
            self._restore()
        else:  # a fresh start, or a resume before the first checkpoint: epoch 1
            if self._init_from is not None:
                self._load_init_weights()
            if self.dist.is_main:
                dropped = self._truncate_metrics(0)
                if dropped:
                    log.warning(
                        "%s has no checkpoint yet: starting over from epoch 1 (dropped %d records of the "
                        "interrupted attempt from metrics.jsonl)", self.out_dir, dropped,
                    )

    # -- setup helpers -------------------------------------------------------------------------
    def _batch_text(self) -> str:
        if self.cfg.batch_size_per_process is not None:
            return f"train.batch_size_per_process = {self.batch_size} in each of {self.dist.world_size} processes"
        if self.dist.enabled:
            return f"train.batch_size = {self.cfg.batch_size}, {self.batch_size} in each of {self.dist.world_size} " \
                   "processes"
        return f"train.batch_size = {self.cfg.batch_size}"

    def _announce_batches(self) -> None:
        """Say how a step is made up when it is not obvious: several processes, or epochs cut short."""
        if self.dist.enabled:
            log.info("%d processes: each optimizer step averages %d images (%s)",
                        self.dist.world_size, self.batch_size * self.dist.world_size, self._batch_text())
        full = len(self.train_loader)
        if self.steps_per_epoch < full:
            log.warning(
                "train.max_steps_per_epoch = %d cuts every epoch to %d of its %d steps (%d of the %d training "
                "images per epoch)", self.cfg.max_steps_per_epoch, self.steps_per_epoch, full,
                self.steps_per_epoch * self.batch_size * self.dist.world_size, self.splits.train_x.shape[0],
            )

    @property
    def state_path(self) -> Path:
        return self.ckpt_dir / "last.state.safetensors"

    def _has_checkpoint(self) -> bool:
        return self.state_path.exists() or (self.ckpt_dir / "last.safetensors").exists()

    def _check_run_dir(self, resume: bool) -> None:
        last = self.ckpt_dir / "last.safetensors"
        if not resume and self._has_checkpoint():
            last = self.state_path if self.state_path.exists() else last
            raise CheckpointError(
                f"{self.out_dir} already holds a run ({last} exists). Pass --resume to continue it, "
                "or choose another --out; nothing was overwritten."
            )
        metrics = self.out_dir / "metrics.jsonl"
        if not resume and metrics.exists():
            raise CheckpointError(
                f"{self.out_dir} holds the records of a run that stopped before its first checkpoint "
                f"({metrics}). Pass --resume to start that run over (its records are dropped), or choose "
                "another --out; nothing was overwritten."
            )
        if resume and self._has_checkpoint():
            old = self._checkpoint_recipe_hash()
            if old is not None and old != self.recipe.hash:
                if not self._allow_recipe_change:
                    raise CheckpointError(
                        f"Cannot resume {self.out_dir}: its checkpoint was trained with the recipe of hash {old}, "
                        f"but the recipe given now resolves to {self.recipe.hash}. Resume with the same recipe "
                        f"(e.g. `advdistill train {self.out_dir / 'recipe.json'} --out {self.out_dir} --resume`), "
                        "add --allow-recipe-change to continue with a changed learning rate, epoch count or "
                        "aux weight (docs/reliability.md lists the keys), or start a new run."
                    )
                self._check_recipe_change(old)
        starts_fresh = not (resume and self._has_checkpoint())
        if self._init_from is not None and starts_fresh and not self._init_from.is_file():
            raise CheckpointError(f"--init-from {self._init_from}: no such file")

    def _check_recipe_change(self, old_hash: str) -> None:
        saved = self.out_dir / "recipe.json"
        try:
            old = read_file(saved)
            recorded = json.loads(saved.read_text(encoding="utf-8")).get("recipe_hash")
        except (RecipeError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"Cannot resume {self.out_dir} with a changed recipe: its recipe.json cannot be read ({exc}), "
                "so what changed cannot be checked. Resume once with the run's original recipe (that rewrites "
                "recipe.json), then change it."
            ) from None
        if recorded != old_hash:
            raise CheckpointError(
                f"Cannot resume {self.out_dir} with a changed recipe: recipe.json (hash {recorded}) is not the "
                f"recipe of the checkpoint (hash {old_hash}), so what changed cannot be checked."
            )
        changed = recipe_changes(old, self.recipe, where=str(self.out_dir))
        self._events.append({"event": "recipe_change", "from_hash": old_hash, "to_hash": self.recipe.hash,
                             "changed": changed})
        log.warning("resuming %s with a changed recipe: %s", self.out_dir, ", ".join(changed))

    def _load_init_weights(self) -> None:
        """Start the student from ``init_from`` (student weights only; the optimizer starts afresh)."""
        path = self._init_from
        state = read_tensors(path)
        source = f"--init-from {path}"
        if self._init_strict:
            load_state_strict(self.student, state, source=source)
            skipped: list[str] = []
        else:
            own = self.student.state_dict()
            usable = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
            if not usable:
                raise CheckpointError(f"{source}: no tensor matches the student {type(self.student).__name__} "
                                      "in name and shape; is it a checkpoint of another architecture?")
            self.student.load_state_dict(usable, strict=False)
            skipped = sorted(set(own) - set(usable))
            if skipped:
                log.warning("%s: kept the random initialisation of %d tensors: %s", source, len(skipped),
                            ", ".join(skipped[:8]) + (" ..." if len(skipped) > 8 else ""))
        meta = read_metadata(path)
        self._events.append({
            "event": "init_from", "path": str(path), "sha256": _sha256(path), "strict": self._init_strict,
            "source_epoch": meta.get("epoch"), "source_recipe_hash": meta.get("recipe_hash"),
            "kept_random": skipped,
        })

    def _checkpoint_epoch(self) -> int | None:
        """The epoch of the checkpoint (the training state file; None without one)."""
        if not self.state_path.exists():
            return None
        info = read_metadata(self.state_path).get("info")
        return int(info["epoch"]) if isinstance(info, dict) and info.get("epoch") is not None else None

    def _is_finished(self) -> bool:
        """Every epoch trained, and the final evaluation written (or not asked for)."""
        epoch = self._checkpoint_epoch()
        if epoch is None or epoch < self.cfg.epochs:
            return False
        if self.recipe.eval.at_end and not (self.out_dir / "report.json").exists():
            return False  # stopped during the final evaluation: the resume runs it
        if self._stale_exports(read_metadata(self.state_path).get("info") or {}):
            return False  # killed while the last save exported its weights: the resume rewrites them
        recipe = self.out_dir / "recipe.json"
        log.warning(
            "%s is finished: it has trained all %d epochs (train.epochs = %d) and written its report; nothing to "
            "do. To evaluate it again: `advdistill eval %s`. To train it for more epochs: `advdistill train %s "
            "--out %s --resume --allow-recipe-change --set train.epochs=N` (N > %d).",
            self.out_dir, epoch, self.cfg.epochs, self.out_dir, recipe, self.out_dir, epoch,
        )
        return True

    def _checkpoint_recipe_hash(self) -> str | None:
        """The hash of the recipe that trained the checkpoint (the checkpoint says it; recipe.json may be damaged)."""
        if self.state_path.exists():
            info = read_metadata(self.state_path).get("info")
            if isinstance(info, dict) and info.get("recipe_hash"):
                return info["recipe_hash"]
        last = self.ckpt_dir / "last.safetensors"  # runs of older versions keep it with the weights
        return read_metadata(last).get("recipe_hash") if last.exists() else None

    def _remove_stale_temp_files(self) -> None:
        removed = remove_stale_temp_files([self.out_dir, self.ckpt_dir, self.out_dir / "plots"])
        if removed:
            log.warning(
                "removed %d temporary file(s) of interrupted writes in %s: %s",
                len(removed), self.out_dir, ", ".join(p.name for p in removed),
            )

    def _check_teacher(self) -> None:
        probe = self.splits.train_x[:2].to(self.device).float().div(255)  # test images are for the end
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
        last = self.ckpt_dir / "last.safetensors"
        if not self.state_path.exists():
            raise CheckpointError(
                f"Cannot resume {self.out_dir}: {last} exists but the training state {self.state_path.name} "
                "(optimizer and RNG states) does not, so an exact resume is impossible. Continue from the "
                f"weights in a new run directory: `advdistill train RECIPE --init-from {last} --out NEW_DIR` "
                "(the optimizer starts afresh)."
            )
        info, rng = load_training_state(self.state_path, self.optimizer, model=self.student)
        self.best, self.best_epoch = info.get("best"), info.get("best_epoch")
        if info["has_weights"]:
            self._repair_exports(info)
        else:  # format 1 (older runs): the weights live in last.safetensors only
            self._restore_legacy_weights(info, last)
        restore_rng(rng, self.device)
        self.start_epoch = int(info["epoch"]) + 1
        self.saved_epoch = int(info["epoch"])
        self.state.epoch = self.saved_epoch
        self._restored_info = info
        self._component_states = read_component_states(self.state_path)
        if self.dist.is_main:
            self._truncate_metrics(int(info["epoch"]))
        log.info("resuming %s after epoch %d", self.out_dir, info["epoch"])

    def _restore_legacy_weights(self, info: dict[str, Any], last: Path) -> None:
        meta = read_metadata(last) if last.exists() else {}
        if meta.get("checkpoint_id") != info.get("checkpoint_id"):
            found = f"from epoch {meta.get('epoch')}" if last.exists() else "missing"
            raise CheckpointError(
                f"Cannot resume {self.out_dir} exactly: its training state {self.state_path.name} (written by an "
                f"older advdistill) is from epoch {info.get('epoch')}, but {last.name} is {found}: the run was "
                "interrupted between the two files. Continue from the weights in a new run directory (the "
                f"optimizer starts afresh): `advdistill train RECIPE --init-from {last} --out NEW_DIR`."
            )
        load_weights(last, self.student)

    def _stale_exports(self, info: dict[str, Any]) -> list[str]:
        """The weight exports ("last", "best", the components', e.g. "ema") that the save of ``info``
        (the state file's) did not finish."""
        best_now = info.get("best_epoch") == info.get("epoch") and info.get("best") is not None
        names = ["last", *(["best"] if best_now else []), *info.get("exports", [])]
        return [name for name in names if self._export_is_stale(name, info)]

    def _export_is_stale(self, name: str, info: dict[str, Any]) -> bool:
        """``checkpoints/<name>.safetensors`` is missing or from another save than the state file's ``info``."""
        path = self.ckpt_dir / f"{name}.safetensors"
        return not path.exists() or read_metadata(path).get("checkpoint_id") != info.get("checkpoint_id")

    def _repair_exports(self, info: dict[str, Any]) -> None:
        """Rewrite last/best.safetensors from the state file when their export was interrupted."""
        if not self.dist.is_main:
            return
        meta = info.get("weights_meta") or {}
        for name in [n for n in self._stale_exports(info) if n in ("last", "best")]:  # components': later
            path = self.ckpt_dir / f"{name}.safetensors"
            save_weights(path, self.student, meta if name == "last" else self._best_meta(meta))
            log.warning("rewrote %s from %s (its export had been interrupted)", path, self.state_path.name)

    # -- component state (advdistill.interfaces.CheckpointState) ---------------------------------
    def _stateful(self) -> dict[str, CheckpointState]:
        """The components whose state goes into the checkpoint, by owner id (``"callbacks.ema"``).

        Callbacks run on the main process only, so only there do they count; step extensions
        run on every process.
        """
        owners: dict[str, CheckpointState] = {}
        if self.dist.is_main:
            owners.update({f"callbacks.{label}": cb for label, cb in self.callbacks.items()})
        owners.update({f"step_extensions.{label}": ext for label, ext in self.step_extensions.items()})
        return {owner: c for owner, c in owners.items() if isinstance(c, CheckpointState)}

    def _weight_exports(self) -> dict[str, tuple[str, torch.nn.Module]]:
        """``checkpoints/<name>.safetensors`` to write at each save: name -> (owner id, module)."""
        exports: dict[str, tuple[str, torch.nn.Module]] = {}
        for owner, component in self._stateful().items():
            for name, module in component.weight_exports().items():
                if name in ("last", "best", "last.state") or not name.replace("_", "").isalnum():
                    raise TrainingError(f"[{owner}] exports weights as {name!r}: choose a name of letters, digits "
                                        "and underscores other than last and best")
                if name in exports:
                    raise TrainingError(f"[{owner}] and [{exports[name][0]}] both export weights as {name!r}")
                exports[name] = (owner, module)
        return exports

    def _load_component_states(self) -> None:
        """On a resume (after the callbacks' ``on_train_start``): give each component its saved state
        back, and rewrite weight exports that the interrupted save did not finish."""
        states = self._component_states or {}
        for owner, component in self._stateful().items():
            if owner in states:
                component.load_state_dict(states[owner])
            elif component.state_dict():
                log.warning("the checkpoint of %s holds no state for [%s]: it starts afresh", self.out_dir, owner)
        if not self.dist.is_main or not self._restored_info.get("has_weights"):
            return
        info, meta = self._restored_info, self._restored_info.get("weights_meta") or {}
        for name, (owner, module) in self._weight_exports().items():
            if self._export_is_stale(name, info):
                path = self.ckpt_dir / f"{name}.safetensors"
                save_weights(path, module, {**meta, "exported_by": owner})
                log.warning("rewrote %s from %s (its export had been interrupted)", path, self.state_path.name)

    def _truncate_metrics(self, epoch: int) -> int:
        """Drop the records of epochs after ``epoch`` (a resumed run writes them again); returns how many.

        A torn last line (a kill during an append) is dropped too, with a warning.
        """
        return keep_records(self.out_dir / metrics_log.FILE_NAME, lambda r: r.get("epoch", 0) <= epoch)

    # -- the loop --------------------------------------------------------------------------------
    def fit(self) -> Path:
        """Run the remaining epochs and the final evaluation; returns the run directory."""
        if self.finished:
            self.close()
            return self.out_dir
        try:
            self._fit()
        except OSError as exc:  # a full disk, a quota, a vanished mount: say what is safe and what to do
            raise RunDirectoryError(self._write_failed(exc)) from exc
        finally:
            self.close()
        return self.out_dir

    def _write_failed(self, exc: OSError) -> str:
        where = f" ({exc.filename})" if exc.filename else ""
        kept = (f"the checkpoint of epoch {self.saved_epoch} is intact" if self.saved_epoch is not None
                else "no checkpoint had been written yet, so --resume starts over")
        recipe = self.out_dir / "recipe.json"
        source = recipe if recipe.exists() else "RECIPE"
        return (
            f"Writing into {self.out_dir} failed: {exc.strerror or exc}{where}. Files are written through a "
            f"temporary file renamed only when complete, so none is half-written: {kept}. Free space (or fix "
            f"the file system), then continue with `advdistill train {source} --out {self.out_dir} --resume`."
        )

    def close(self) -> None:
        """Release the run directory's lock and leave the process group (idempotent)."""
        if self._locked:
            self._locked = False
            release_run_dir_lock(self.out_dir)
            if self._created_out_dir and self.out_dir.is_dir() and not any(self.out_dir.iterdir()):
                self.out_dir.rmdir()
        teardown(self.dist)

    def __del__(self) -> None:  # a Trainer built but never fitted (tests, benchmarks) still unlocks
        if getattr(self, "_locked", False):
            self.close()

    def _fit(self) -> None:
        main = self.dist.is_main  # only rank 0 writes files, runs callbacks and evaluates
        callbacks = list(self.callbacks.values()) if main else []
        if main:
            self._write_recipe_json()
            if self.teacher_audit is not None and self.start_epoch == 1:  # a resume keeps the first record
                self.append_metrics(self.teacher_audit)
        if self.start_epoch > self.cfg.epochs and main:
            log.warning("%s has trained all %d epochs; running the final evaluation, which did not finish",
                        self.out_dir, self.cfg.epochs)
        for cb in callbacks:
            cb.on_train_start(self.state)
        if self._component_states is not None:
            self._load_component_states()
        for epoch in range(self.start_epoch, self.cfg.epochs + 1):
            self.state.epoch = epoch
            for cb in callbacks:
                cb.on_epoch_start(self.state, epoch)
            record = self.train_epoch(epoch)
            if main:
                for cb in callbacks:
                    cb.on_epoch_end(self.state, record)
                self._update_best(record)
                # the record goes first: a resume truncates metrics.jsonl to the checkpoint's epoch
                self.append_metrics(record)
                if PAUSE_AT is not None:
                    pause_point(f"epoch-end:before-save:{epoch}")
                self._save(epoch, improved=record.get("best", False))
            barrier(self.dist)
        if self.recipe.eval.at_end:  # every process evaluates its part of the test set
            report = self.final_evaluation()
            if main:
                self.state.report = report
        for cb in callbacks:  # after the report: the trackers upload it
            cb.on_train_end(self.state)
        barrier(self.dist, "at the end of training")

    def _write_recipe_json(self) -> None:
        """recipe.json: the resolved recipe, its hash, and the history of changes and initialisations."""
        history: list[Any] = []
        if self.start_epoch > 1:  # continuing: keep what happened to this run before
            try:
                previous = json.loads((self.out_dir / "recipe.json").read_text(encoding="utf-8"))
                history = list(previous.get("history", [])) if isinstance(previous, dict) else []
            except (OSError, ValueError):
                history = []
        for event in self._events:
            record = {**event, "epoch": self.start_epoch - 1}
            history.append(record)
            if self.dist.is_main:
                self.append_metrics(record)
        recipe_json = {**self.recipe.to_dict(), "recipe_hash": self.recipe.hash, "advdistill_version": __version__}
        if history:
            recipe_json["history"] = history
        atomic_write_text(self.out_dir / "recipe.json", json.dumps(recipe_json, indent=2) + "\n")

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
                self._guard(float(all_reduce(worst, self.dist, "max")), epoch, step, lr)
                logs = info.logs = {k: all_reduce(v, self.dist) for k, v in logs.items()}
                if self.dist.is_main:
                    self.append_metrics({
                        "event": "step", "epoch": epoch, "step": progress.global_step, "loss": info.loss_value,
                        "lr": lr, "images_per_s": round(info.images_per_s, 2),
                        **{f"loss/{k}": float(v) for k, v in logs.items()},
                    })
            if self.dist.is_main:
                for cb in self.callbacks.values():
                    cb.on_step_end(self.state, info)
            if PAUSE_AT is not None:
                pause_point(f"step:{progress.global_step}")
        steps = step + 1
        if steps:
            self._check_updated_weights(x, y, epoch, lr)
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
        extensions = self.step_extensions.values()
        step = self._train_step_view(ctx) if extensions else None
        for ext in extensions:  # e.g. AWP perturbs the weights here
            ext.before_loss(step)
        with autocast(self.device, self.amp):
            # 3) L = L_AD + Σ aux
            loss = self._recipe_loss(ctx, aux=True, log=True)
        # 4) update; set_to_none frees the gradient memory between steps
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for ext in extensions:
            ext.before_update(step)
        if self.cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        for ext in extensions:  # e.g. AWP removes its perturbation here
            ext.after_update(step)
        return loss.detach(), ctx.logs

    def _recipe_loss(self, ctx: StepContext, *, aux: bool, log: bool) -> torch.Tensor:
        """L = objective (+ Σ aux) on ``ctx``; with ``log``, each aux term goes to ``ctx.logs``."""
        loss = self.objective(ctx)
        if aux:
            for label, term_fn in self.aux.items():
                term = term_fn(ctx)
                if log:
                    ctx.log(label, term)
                loss = loss + term
        return loss

    def _train_step_view(self, ctx: StepContext) -> TrainStep:
        """What the step extensions see of the step (:class:`advdistill.interfaces.TrainStep`)."""

        def loss_fn(aux: bool) -> torch.Tensor:
            # the bare student (the DDP wrapper would wait for a backward of its own), on copies of
            # its buffers: this forward is not a training step, BatchNorm statistics stay as they are
            student = WithBufferCopies(self.student)
            with autocast(self.device, self.amp):
                return self._recipe_loss(ctx.fresh(student=student), aux=aux, log=False)

        return TrainStep(ctx=ctx, model=self.student, optimizer=self.optimizer, loss_fn=loss_fn)

    def _guard(self, worst: float, epoch: int, step: int, lr: float) -> None:
        """Stop when a loss since the last log step was non-finite or above ``train.max_loss``.

        Runs on log steps only, where the loop synchronises anyway: the step itself never waits
        for the GPU. The losses it sees were computed before their updates; the weights after
        the epoch's last update are checked by :meth:`_check_updated_weights` before they are saved.
        """
        limit = self.cfg.max_loss
        if not math.isfinite(worst) or (limit is not None and worst > limit):
            what = (f"The training loss diverged in epoch {epoch}: it reached {worst:g} by step {step + 1} of "
                    f"{self.steps_per_epoch}")
            raise self._diverged(what, epoch, lr)

    def _check_updated_weights(self, x: torch.Tensor, y: torch.Tensor, epoch: int, lr: float) -> None:
        """Before an epoch's weights are kept: every parameter and buffer finite, and the clean loss of a
        training batch (eval mode: nothing changes) finite and within ``train.max_loss``.

        The step's own losses are computed *before* each update, so without this the epoch's last
        update — the one a checkpoint keeps — would go unchecked. Costs one forward pass and one
        host synchronisation per epoch.
        """
        with torch.no_grad(), module_mode(self.student, False), autocast(self.device, self.amp):
            probe = torch.nn.functional.cross_entropy(self.student(x).float(), y)
            tensors = [t.detach().float().sum() for t in self.student.state_dict().values()
                       if t.is_floating_point()]
            total = torch.stack([probe, *tensors]).sum()  # NaN or inf anywhere makes it non-finite
            worst = torch.where(torch.isfinite(total), probe, torch.full_like(probe, math.inf))
        value = float(all_reduce(worst, self.dist, "max"))
        limit = self.cfg.max_loss
        if not math.isfinite(value) or (limit is not None and value > limit):
            what = (f"The weights diverged at the end of epoch {epoch}: after its last update the clean loss of a "
                    f"training batch is {value:g}" + (" (or a weight is not finite)" if math.isinf(value) else ""))
            raise self._diverged(what, epoch, lr)

    def _diverged(self, what: str, epoch: int, lr: float) -> TrainingError:
        """The error to raise (recorded in metrics.jsonl too): what happened, what is kept, which knobs
        this recipe has, and the command that continues."""
        limit = self.cfg.max_loss
        parts = [f"{what} (train.max_loss = {limit:g})." if limit is not None else f"{what}."]
        run, saved = self.out_dir, self.saved_epoch
        if saved is not None:
            parts.append(
                f"Kept: {run / 'checkpoints'} holds epoch {saved} (last.state.safetensors, last.safetensors), "
                f"whose weights were checked before they were saved; nothing of epoch {epoch} was saved."
            )
        else:
            parts.append(f"No checkpoint exists yet: the run diverged in epoch {epoch}, before its first save.")
        knobs = [f"lower the learning rate (optim.lr, {lr:g} at this point)"]
        for key in aux_weight_keys(self.recipe):
            label, name = key.split(".")[1:]
            value = getattr(self.recipe.aux[label].config, name)(Progress(epoch, self.cfg.epochs))
            knobs.append(f"lower {key} ({value:g} in epoch {epoch})")
        if self.cfg.grad_clip is None:
            knobs.append("clip the gradient norm (train.grad_clip, e.g. 1.0)")
        knobs.append("or raise train.max_loss if such losses are expected")
        parts.append("To fix it: " + ", ".join(knobs) + ".")
        # a tenth of the smaller of the current and the first learning rate (the current may be a spike)
        first = self.recipe.optim.lr(Progress(1, self.cfg.epochs, 0, self.steps_per_epoch))
        lower = f"optim.lr={min(lr, first) / 10:g}"
        if saved is not None:
            parts.append(
                f"To continue from epoch {saved} with a lower learning rate: `advdistill train {run / 'recipe.json'} "
                f"--out {run} --resume --allow-recipe-change --set {lower}`; or start a new run from those weights: "
                f"`advdistill train RECIPE --init-from {run / 'checkpoints' / 'last.safetensors'} --out NEW_DIR "
                f"--set {lower}`."
            )
        else:
            parts.append(
                f"To start over with a lower learning rate: `advdistill train {run / 'recipe.json'} --out {run} "
                f"--resume --set {lower}` (a run without a checkpoint starts over from epoch 1; its records are "
                "dropped)."
            )
        if self.dist.is_main:
            self.append_metrics({"event": "diverged", "epoch": epoch, "message": parts[0]})
        return TrainingError(" ".join(parts))

    # -- records and checkpoints ---------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        metrics_log.append_record(self.out_dir / metrics_log.FILE_NAME, record)

    def _update_best(self, record: dict[str, Any]) -> None:
        score = record.get("eval", {}).get(self.cfg.best_metric)
        if score is not None and (self.best is None or score > self.best):
            self.best, self.best_epoch = float(score), record["epoch"]
            record["best"] = True

    def _best_meta(self, meta: dict[str, Any]) -> dict[str, Any]:
        # chosen on the validation split; runs before it existed have no "split" (they chose on test)
        return {**meta, "best_metric": self.cfg.best_metric, "best": self.best, "split": "val"}

    def _save(self, epoch: int, improved: bool) -> None:
        """Write the checkpoint (one atomic file), then export the plain weight files from it.

        A kill before the state file's rename keeps the previous checkpoint; a kill after it
        leaves exports that a resume recognises (checkpoint_id) and rewrites from the state file.
        """
        checkpoint_id = secrets.token_hex(8)
        exports = self._weight_exports()
        meta = {
            "epoch": epoch, "recipe_hash": self.recipe.hash, "checkpoint_id": checkpoint_id,
            "model": self.recipe.student.name, "dataset": self.info.name,
            "num_classes": self.info.num_classes, "in_chans": self.info.in_chans,
        }
        info = {
            "epoch": epoch, "checkpoint_id": checkpoint_id, "recipe_hash": self.recipe.hash,
            "best": self.best, "best_epoch": self.best_epoch, "weights_meta": meta,
            "exports": sorted(exports),  # the components' exports of this save (e.g. "ema")
        }
        components = {owner: dict(c.state_dict()) for owner, c in self._stateful().items()}
        save_training_state(self.state_path, self.optimizer, info, capture_rng(self.device), model=self.student,
                            components={owner: state for owner, state in components.items() if state})
        self.saved_epoch = epoch
        if PAUSE_AT is not None:
            pause_point(f"save:after-state:{epoch}")
        save_weights(self.ckpt_dir / "last.safetensors", self.student, meta)
        if PAUSE_AT is not None:
            pause_point(f"save:after-last:{epoch}")
        if improved:
            save_weights(self.ckpt_dir / "best.safetensors", self.student, self._best_meta(meta))
        for name, (owner, module) in exports.items():
            save_weights(self.ckpt_dir / f"{name}.safetensors", module, {**meta, "exported_by": owner})

    def final_evaluation(self) -> dict[str, Any]:
        """Evaluate last and best (if any) on the test split with the recipe's [eval] metrics; writes
        report.* (the numbers of [eval] checkpoint at the top) and per_example.safetensors."""
        from advdistill.evaluation.api import evaluate_run

        return evaluate_run(
            self.out_dir, recipe=self.recipe, student=self.student, teacher=self.teacher, splits=self.splits
        )
