"""`advdistill demo`: the main job on the embedded MNIST-5k data set.

1. trains a robust teacher (PGD-AT, small CNN 24/48) and reports its accuracy under PGD-20;
2. distils a smaller student (16/32) with RSLAD, and with RSLAD + IGDM, from that teacher;
3. evaluates both students (clean, PGD-20, GD/GC to the teacher) and prints a comparison.

Each stage is an ordinary run directory (DESIGN §5) made from the recipes in
``recipes/demo/`` (installed as ``advdistill_recipes/demo``), so every number can be
re-evaluated or re-trained with ``advdistill eval`` / ``advdistill train``.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from importlib.resources import files
from pathlib import Path

import click

from advdistill.io import atomic_write_text

STUDENTS = ("rslad", "rslad+igdm")
COLUMNS = (("clean", "Clean"), ("pgd20", "PGD-20"), ("gd", "GD ↓"), ("gc", "GC ↑"))


def demo_recipe(name: str) -> Path:
    return Path(str(files("advdistill_recipes") / "demo" / f"{name}.toml"))


def summary_table(rows: list[dict]) -> str:
    """A markdown table of the demo's runs (the numbers of each run's reported checkpoint)."""
    header = ("| run | model | checkpoint | " + " | ".join(title for _, title in COLUMNS)
              + " | sanity checks | time (train + eval) |")
    lines = [header, "|" + "---|" * (len(COLUMNS) + 5)]
    for row in rows:
        cells = []
        for key, _ in COLUMNS:
            value = row["metrics"].get(key)
            cells.append("-" if value is None else (f"{value:.2f}" if key in ("clean", "pgd20") else f"{value:.3f}"))
        lines.append(f"| {row['run']} | {row['model']} | {row.get('checkpoint', '-')} | " + " | ".join(cells)
                     + f" | {row.get('checks', '-')} | {row['seconds']:.0f} s |")
    return "\n".join(lines)


def _checks(report: dict) -> str:
    """``all 8 passed`` or ``flagged: more_steps, black_box`` (the reported checkpoint's checks)."""
    checks = report.get("checks")
    if not isinstance(checks, dict):
        return "-"
    if checks.get("flagged"):
        return "flagged: " + ", ".join(checks["flagged"])
    statuses = [result.get("status") for result in checks.get("results", {}).values()]
    return f"{statuses.count('passed')} passed" + (f", {statuses.count('not run')} not run"
                                                   if "not run" in statuses else "")


def _checkpoint(report: dict) -> str:
    checkpoint = report.get("checkpoint")
    if not isinstance(checkpoint, dict):
        return "-"
    return f"{checkpoint.get('name')} (epoch {checkpoint.get('epoch')})"


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the three runs (default: runs/demo-<date>-<time>; never overwritten).")
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE",
              help="Override a value in every demo recipe, e.g. --set train.epochs=2 for a quick look.")
def demo(out: Path | None, overrides: tuple[str, ...]) -> None:
    """Train a robust teacher on MNIST-5k, distil RSLAD and RSLAD+IGDM students, compare them."""
    from advdistill import load_recipe, train

    out = out or Path("runs") / f"demo-{datetime.now():%Y%m%d-%H%M%S}"
    started = time.perf_counter()
    rows = []

    def run(name: str, extra: tuple[str, ...] = ()) -> Path:
        recipe = load_recipe(demo_recipe(name), (*overrides, *extra))
        click.secho(f"\n== {name}: {recipe.description}", bold=True, err=True)
        t0 = time.perf_counter()
        run_dir = train(recipe, out / name)
        report = json.loads((run_dir / "report.json").read_text())
        rows.append({"run": name, "model": _describe(recipe), "checkpoint": _checkpoint(report),
                     "checks": _checks(report),
                     "metrics": report["metrics"], "seconds": time.perf_counter() - t0, "dir": str(run_dir)})
        return run_dir

    teacher_dir = run("teacher")
    teacher_ckpt = teacher_dir / "checkpoints" / "last.safetensors"
    for name in STUDENTS:
        run(name, (f"teacher.path={json.dumps(str(teacher_ckpt))}",))

    total = time.perf_counter() - started
    table = summary_table(rows)
    text = (
        "# advdistill demo: MNIST-5k (3,500 train + 500 validation / 1,000 test real digits), Linf eps = 0.2\n\n"
        f"{table}\n\n"
        "Accuracies in percent on the 1,000 test digits (PGD-20: 20 steps of 0.025, random start) of each "
        "run's last checkpoint; each student's report.md also has a row for `best`, the epoch with the best "
        "periodic PGD accuracy on validation digits (held out of the training digits; never test digits; "
        "the students learn from the teacher's last weights, so the teacher has no `best`). "
        "GD/GC: mean L2 distance / cosine similarity between the student's and the teacher's input "
        "gradients of the cross-entropy. Sanity checks: those of the reported checkpoint, each explained in the "
        "run's report.md (the advdistill documentation, \"Metrics\" page, \"Sanity checks\"). "
        f"Total time {total:.0f} s.\n"
    )
    atomic_write_text(out / "summary.md", text)
    atomic_write_text(out / "summary.json", json.dumps({"runs": rows, "seconds": total}, indent=2) + "\n")
    click.echo(text)
    click.echo(f"runs and reports: {out}")


def _describe(recipe) -> str:
    widths = getattr(recipe.student.config, "widths", None)
    return f"{recipe.student.name} {'/'.join(map(str, widths))}" if widths else recipe.student.name
