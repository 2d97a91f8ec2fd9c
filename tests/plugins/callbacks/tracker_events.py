"""The engine's events for a tracker, and the numbers every tracker must then hold (at which x)."""

from __future__ import annotations

import torch

from advdistill.interfaces import StepInfo

STEPS = 3  # per epoch
EPOCHS = 2
#: a report of two checkpoints, as the final evaluation writes it
REPORT = {
    "metrics": {"clean": 50.0, "pgd20": 25.0},
    "checkpoint": {"name": "last"},
    "checkpoints": {
        "last": {"epoch": 2, "metrics": {"clean": 50.0, "pgd20": 25.0, "eps_curve": [{"eps": 0.1, "pgd20": 20.0}]}},
        "ema": {"epoch": 2, "metrics": {"clean": 52.5, "pgd20": 27.5}},
    },
}
AUDIT = {"event": "teacher_audit", "name": "teacher", "clean": 90.0, "pgd20": 45.0, "n": 1000, "status": "ok"}


def drive(callback, run) -> dict[tuple[str, int], float]:
    """Call ``callback`` as the engine does over EPOCHS epochs of STEPS steps (the last step of each
    epoch a log step); returns ``{(name, x): value}`` of what a tracker must log."""
    expected = {}
    for key in ("clean", "pgd20"):
        expected[f"teacher_audit/{key}", 0] = AUDIT[key]
    expected["teacher_audit/n", 0] = 1000.0
    callback.on_train_start(run)
    for epoch in range(1, EPOCHS + 1):
        run.epoch = epoch
        callback.on_epoch_start(run, epoch)
        for step in range(STEPS):
            global_step = (epoch - 1) * STEPS + step
            loss = torch.tensor(1.0 / (global_step + 1))
            logged = step == STEPS - 1
            info = StepInfo(epoch, step, STEPS, global_step, loss, 0.1 * epoch, {"igdm": loss / 4},
                            loss_value=float(loss) if logged else None, images_per_s=100.0 * epoch if logged else None)
            callback.on_step_end(run, info)
            if logged:
                x = global_step + 1
                expected.update({("loss", x): float(loss), ("lr", x): 0.1 * epoch,
                                 ("images_per_s", x): 100.0 * epoch, ("loss/igdm", x): float(loss) / 4})
        record = {"event": "epoch", "epoch": epoch, "train_loss": 0.5 / epoch, "lr": 0.1 * epoch, "seconds": 1.5,
                  "eval": {"clean": 40.0 + epoch, "pgd": 20.0 + epoch, "ema/pgd": 21.0 + epoch},
                  "linearity": 0.25 * epoch, "best": True}
        callback.on_epoch_end(run, record)
        x = epoch * STEPS
        expected.update({("epoch/train_loss", x): 0.5 / epoch, ("epoch/lr", x): 0.1 * epoch,
                         ("epoch/seconds", x): 1.5, ("eval/clean", x): 40.0 + epoch, ("eval/pgd", x): 20.0 + epoch,
                         ("eval/ema/pgd", x): 21.0 + epoch, ("epoch/linearity", x): 0.25 * epoch})
    run.report = REPORT
    callback.on_train_end(run)
    x = EPOCHS * STEPS
    expected.update({("test/last/clean", x): 50.0, ("test/last/pgd20", x): 25.0, ("test/ema/clean", x): 52.5,
                     ("test/ema/pgd20", x): 27.5})
    return expected
