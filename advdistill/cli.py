"""The ``advdistill`` command line (DESIGN §5): a thin layer over :mod:`advdistill.api`."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from advdistill import __version__
from advdistill.errors import AdvDistillError

SET_HELP = "Override a recipe value, e.g. --set optim.lr=0.05 --set aux.igdm.beta=2 (TOML value syntax)."


class AdvDistillGroup(click.Group):
    """Turns advdistill's errors into a one-line message and exit status 2 (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AdvDistillError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(2)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        _add_plugin_commands(self)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _add_plugin_commands(self)
        return super().list_commands(ctx)


_plugin_commands_added = False


def _add_plugin_commands(group: click.Group) -> None:
    """Attach the commands plugins register (kind ``command``), once."""
    global _plugin_commands_added
    if _plugin_commands_added:
        return
    _plugin_commands_added = True
    from advdistill.errors import PluginError
    from advdistill.plugins import get_registry

    registry = get_registry()
    for name in registry.names("command"):
        if name in group.commands:
            continue
        try:
            command = registry.get("command", name)
        except PluginError as exc:  # one broken plugin must not take the whole CLI down
            logging.getLogger(__name__).warning("%s", exc)
            continue
        group.add_command(command, name=name)


@click.group(cls=AdvDistillGroup)
@click.version_option(__version__, prog_name="advdistill")
@click.option("-v", "--verbose", is_flag=True, help="Log more (INFO from advdistill, DEBUG with -vv).")
def cli(verbose: bool) -> None:
    """Adversarially robust knowledge distillation, composed from recipes and plugins."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")


# -- plugins ---------------------------------------------------------------------------------
@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--kind", default=None, help="Only components of this kind (attack, objective, aux, ...).")
def plugins_command(as_json: bool, kind: str | None) -> None:
    """List every registered component with its kind, plugin, package and version."""
    from advdistill.api import list_components

    infos = list_components(kind)
    if as_json:
        click.echo(json.dumps([info.as_dict() for info in infos], indent=2))
        return
    rows = [(i.kind, i.name, i.plugin, f"{i.package} {i.version}".strip(), i.summary) for i in infos]
    headers = ("KIND", "NAME", "PLUGIN", "PACKAGE", "SUMMARY")
    widths = [max(len(str(r[c])) for r in [headers, *rows]) for c in range(4)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(cell).ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])


# -- recipes ---------------------------------------------------------------------------------
@cli.group("recipe")
def recipe_group() -> None:
    """Inspect and validate recipes."""


def _recipe_argument(f):
    f = click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE", help=SET_HELP)(f)
    return click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))(f)


@recipe_group.command("show")
@_recipe_argument
def recipe_show(recipe: Path, overrides: tuple[str, ...]) -> None:
    """Print the resolved RECIPE (defaults filled in) as JSON, with its hash."""
    from advdistill.recipe import load_recipe

    resolved = load_recipe(recipe, overrides)
    click.echo(json.dumps({**resolved.to_dict(), "recipe_hash": resolved.hash}, indent=2))


@recipe_group.command("check")
@_recipe_argument
def recipe_check(recipe: Path, overrides: tuple[str, ...]) -> None:
    """Validate RECIPE; exit 0, or 2 with a message naming the file and key at fault."""
    from advdistill.recipe import load_recipe

    resolved = load_recipe(recipe, overrides)
    click.echo(f"ok: {recipe} (hash {resolved.hash})")


# -- training and evaluation -----------------------------------------------------------------
@cli.command("train")
@_recipe_argument
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default: runs/<recipe name>).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint, exactly.")
@click.option("--seed", type=int, default=None, help="Shorthand for --set train.seed=N.")
@click.option("--device", default=None, help="Shorthand for --set train.device=D (auto, cpu, cuda, cuda:N).")
def train_command(
    recipe: Path, overrides: tuple[str, ...], out: Path | None, resume: bool, seed: int | None, device: str | None
) -> None:
    """Train the student described by RECIPE (a TOML file, or a run's recipe.json)."""
    from advdistill.api import train
    from advdistill.recipe import load_recipe

    if seed is not None:
        overrides = (*overrides, f"train.seed={seed}")
    if device is not None:
        overrides = (*overrides, f"train.device={json.dumps(device)}")
    resolved = load_recipe(recipe, overrides)
    out = out or Path("runs") / resolved.name
    run_dir = train(resolved, out, resume=resume)
    click.echo(f"run directory: {run_dir}")
    report = run_dir / "report.md"
    if report.exists():
        click.echo(report.read_text())


@cli.command("eval")
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Recipe for a checkpoint outside a run directory (with --checkpoint).")
@click.option("--checkpoint", default=None,
              help="'last', 'best' (in RUN_DIR) or a .safetensors path. "
                   "Default: the recipe's [eval] checkpoint.")
@click.option("--metrics", default=None,
              help="Comma-separated metric labels of the recipe or metric kinds, "
                   "e.g. clean,pgd,autoattack,grad_alignment.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where report.json/report.md/plots go (default: RUN_DIR, or the current directory). "
                   "With several RUN_DIRs: OUT/<run>/ per run, and the comparison in OUT.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Evaluate the first N test images only (quick checks).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Evaluation batch size.")
@click.option("--device", default=None, help="auto, cpu or cuda (default: the recipe's).")
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
def eval_command(
    run_dirs: tuple[Path, ...], recipe_path: Path | None, checkpoint: str | None, metrics: str | None,
    out: Path | None, limit: int | None, batch_size: int | None, device: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Evaluate RUN_DIR... (or --recipe R --checkpoint C); write report.json, report.md and plots/.

    With several RUN_DIRs, also print their comparison table and draw plots/gd_gc_vs_aa.png.
    """
    from advdistill.evaluation.api import evaluate_checkpoint, evaluate_run
    from advdistill.evaluation.report import markdown
    from advdistill.recipe import load_recipe

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    options = dict(metrics=names, limit=limit, batch_size=batch_size, device=device)
    if not run_dirs:
        if recipe_path is None or checkpoint is None:
            raise click.UsageError("give a RUN_DIR, or both --recipe and --checkpoint")
        recipe = load_recipe(recipe_path, overrides)
        report = evaluate_checkpoint(recipe, checkpoint, out_dir=out or Path("."), **options)
        click.echo(markdown(report))
        return
    several = len(run_dirs) > 1
    for run_dir in run_dirs:
        recipe = load_recipe(recipe_path or run_dir / "recipe.json", overrides)
        run_out = out / run_dir.name if several and out is not None else out
        report = evaluate_run(run_dir, recipe=recipe, checkpoint=checkpoint, out_dir=run_out, **options)
        click.echo(markdown(report))
    if several:
        _echo_comparison([out / d.name if out is not None else d for d in run_dirs], out or Path("."))


def _echo_comparison(run_dirs: list[Path], out: Path) -> None:
    from advdistill.evaluation.compare import compare_runs

    result = compare_runs(run_dirs, out)
    click.echo(result["table"])
    for path in result["plots"]:
        click.echo(f"wrote {path}")


@cli.command("compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Where comparison.md, comparison.json and plots/ (gd_gc_vs_aa.png, ...) go.")
def compare_command(run_dirs: tuple[Path, ...], out: Path) -> None:
    """Print one paper-style table (Clean, PGD-20, AA, GD, GC) over the runs' report.json files
    and draw GD/GC vs AutoAttack with regression lines (the paper's Fig. 4)."""
    _echo_comparison(list(run_dirs), out)


# -- studies ---------------------------------------------------------------------------------
@cli.command("study")
@click.argument("study_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="List the runs and their state (done, to resume, to run); run nothing.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Study directory (default: the study file's `out`, else runs/studies/<name>).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs at a time; with N > 1 each run is a subprocess with one thread (OMP_NUM_THREADS=1).")
def study_command(study_file: Path, dry_run: bool, out: Path | None, jobs: int) -> None:
    """Train every cell of STUDY_FILE (a TOML grid of recipes x seeds), then write study.md/study.json:
    means with 95% t intervals, paired differences, McNemar tests, and plots. Finished runs are skipped."""
    from advdistill.study import run_study

    # the listing is the answer of a dry run; progress lines go to stderr
    run_study(study_file, out=out, jobs=jobs, dry_run=dry_run, echo=lambda line: click.echo(line, err=not dry_run))


def main() -> None:
    cli(prog_name="advdistill")


if __name__ == "__main__":
    main()
