"""The ``advdistill`` command line (DESIGN §5): a thin layer over :mod:`advdistill.api`."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from advdistill.errors import AdvDistillError
from advdistill.version import __version__

SET_HELP = "Override a recipe value, e.g. --set optim.lr=0.05 --set aux.igdm.beta=2 (TOML value syntax)."


class AdvDistillGroup(click.Group):
    """Turns advdistill's errors into a one-line message and exit status 2 (no traceback).

    Commands that plugins register (kind ``command``) are listed in ``--help`` from their
    registration's summary and imported only when invoked, so ``--help`` works whatever a
    plugin's module does (and imports no torch).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AdvDistillError as exc:
            rank = _launched_rank()
            where = f" (process {rank})" if rank else ""
            click.secho(f"Error{where}: {exc}", fg="red", err=True)
            sys.exit(2)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_plugin_command_specs()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in _plugin_command_specs():
            return super().get_command(ctx, cmd_name)
        return _PluginCommand(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        specs = _plugin_command_specs()
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                rows.append((name, click.utils.make_default_short_help(specs[name], limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        failures = _plugin_failures()
        if failures:
            with formatter.section("Plugins that failed to load (see `advdistill plugins`)"):
                formatter.write_dl([(f.plugin, f"{f.stage}: {f.error}") for f in failures])


class _PluginCommand(click.Command):
    """A plugin's command, imported when it runs (or when its own --help is asked for)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)

    def resolve(self) -> click.Command:
        """The real command (imported now); a PluginError when the plugin is broken."""
        from advdistill.plugins import get_registry

        command = get_registry().get("command", self.name)  # PluginError: conflict or broken import
        if not isinstance(command, click.Command):
            from advdistill.errors import PluginError

            spec = get_registry().spec("command", self.name)
            raise PluginError(f"command {self.name!r} of {spec.source()} is not a click command: {command!r}")
        return command

    def main(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - used when run on its own
        return self.resolve().main(*args, **kwargs)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        # the real command's context: the group then invokes the real command
        return self.resolve().make_context(info_name, args, parent=parent, **extra)


def _plugin_command_specs() -> dict[str, str]:
    """Plugin command name -> one-line summary, without importing any command's module."""
    registry = _registry_or_none()
    if registry is None:
        return {}
    out = {}
    for name in registry.names("command"):
        if ("command", name) in registry.conflicts:
            plugins = " and ".join(repr(spec.plugin) for spec in registry.conflicts["command", name])
            out[name] = f"(unusable: registered by plugins {plugins}; see `advdistill plugins`)"
        else:
            out[name] = registry.spec("command", name).summary or ""
    return out


def _plugin_failures() -> list[Any]:
    registry = _registry_or_none()
    return list(registry.failures) if registry is not None else []


def _registry_or_none() -> Any:
    from advdistill.plugins import get_registry

    try:
        return get_registry()
    except Exception as exc:  # the plugin machinery itself: the built-in commands must still work
        logging.getLogger(__name__).warning("plugins could not be loaded: %s: %s", type(exc).__name__, exc)
        return None


def _launched_rank() -> int:
    """This process's rank under ``torchrun`` (0 otherwise); only process 0 prints."""
    return int(os.environ.get("RANK", "0") or 0)


def _echo(text: str) -> None:
    """Print ``text`` in process 0 only (under torchrun every process runs the command)."""
    if _launched_rank() == 0:
        click.echo(text)


@click.group(cls=AdvDistillGroup)
@click.version_option(__version__, prog_name="advdistill")
@click.option("-v", "--verbose", is_flag=True, help="Log more (INFO from advdistill, DEBUG with -vv).")
def cli(verbose: bool) -> None:
    """Adversarially robust knowledge distillation, composed from recipes and plugins."""
    level = logging.INFO if verbose else logging.WARNING
    if _launched_rank() != 0:  # the other torchrun processes say only what goes wrong in them
        level = logging.ERROR
        warnings.simplefilter("ignore")
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    if _launched_rank() == 0:  # process 0 prints the merged evaluation's progress lines
        _show_evaluation_progress()


class _ProgressLines(logging.StreamHandler):
    """Prints the evaluation's progress lines (one per checkpoint, per metric, per sanity-check run)."""


def _show_evaluation_progress() -> None:
    """Every evaluation prints one line per metric to stderr, also when stdout is not a terminal (a
    log file, CI): a long AutoAttack is not silent, and stdout keeps only the report."""
    logger = logging.getLogger("advdistill.evaluation.progress")
    for handler in [h for h in logger.handlers if isinstance(h, _ProgressLines)]:
        logger.removeHandler(handler)  # one handler per invocation (tests invoke the CLI many times)
    handler = _ProgressLines(sys.stderr)
    handler.setFormatter(logging.Formatter("eval: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


# -- plugins ---------------------------------------------------------------------------------
@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--kind", default=None, help="Only components of this kind (attack, objective, aux, ...).")
def plugins_command(as_json: bool, kind: str | None) -> None:
    """List every registered component with its kind, plugin, package and version."""
    from advdistill.api import list_components

    infos = list_components(kind)
    failures = _plugin_failures()
    if as_json:
        rows = [info.as_dict() for info in infos]
        rows += [{"kind": None, "name": None, "plugin": f.plugin, "package": f.package, "version": f.version,
                  "summary": f.describe(), "alias_of": None, "status": "failed", "error": f.error} for f in failures]
        click.echo(json.dumps(rows, indent=2))
        return
    marks = {"conflict": "[CONFLICT] ", "broken": "[BROKEN] "}
    rows = [(i.kind, i.name, i.plugin, f"{i.package} {i.version}".strip(), marks.get(i.status, "") + i.summary)
            for i in infos]
    headers = ("KIND", "NAME", "PLUGIN", "PACKAGE", "SUMMARY")
    widths = [max(len(str(r[c])) for r in [headers, *rows]) for c in range(4)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(cell).ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
    if failures:
        click.echo("\nFAILED PLUGINS (left out; everything else works):")
        for failure in failures:
            click.echo(f"  {failure.describe()}")


# -- recipes ---------------------------------------------------------------------------------
@cli.group("recipe")
def recipe_group() -> None:
    """Inspect and validate recipes."""


def _recipe_argument(f):
    f = click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE", help=SET_HELP)(f)
    return click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))(f)


@recipe_group.command("list")
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (name, path, summary) instead of a table.")
@click.option("--bases", is_flag=True, help="Include the bases (recipes/base/...) that other recipes extend.")
def recipe_list(pattern: str | None, as_json: bool, bases: bool) -> None:
    """List the bundled recipes; each NAME works wherever a recipe path does, from any directory.

    PATTERN filters the names: a glob (cifar10/*/rslad*) or a part of the name (mobilenetv2).
    """
    import fnmatch

    from advdistill.recipe.bundled import list_bundled, recipes_root

    found = list_bundled(bases=bases)
    if pattern:
        found = [r for r in found if fnmatch.fnmatchcase(r.name, pattern) or pattern in r.name]
    if as_json:
        click.echo(json.dumps([{"name": r.name, "path": str(r.path), "summary": r.summary} for r in found], indent=2))
        return
    if not found:
        where = recipes_root()
        click.echo(f"no bundled recipe matches {pattern!r}" if pattern and where else "no bundled recipes installed")
        return
    width = max(len(r.name) for r in found)
    for r in found:
        click.echo(f"{r.name.ljust(width)}  {r.summary}".rstrip())
    click.echo(f"\n{len(found)} recipes in {recipes_root()}; e.g. `advdistill recipe show {found[0].name}`, "
               f"`advdistill train {found[0].name} --out runs/x`")


@recipe_group.command("show")
@_recipe_argument
def recipe_show(recipe: Path, overrides: tuple[str, ...]) -> None:
    """Print the resolved RECIPE (defaults filled in) as JSON, with its hash."""
    from advdistill.recipe import load_recipe

    resolved = load_recipe(recipe, overrides)
    click.echo(json.dumps({**resolved.to_dict(), "recipe_hash": resolved.hash}, indent=2))


@recipe_group.command("check")
@_recipe_argument
@click.option("--files/--no-files", default=True, show_default=True,
              help="Also check that the data set's files and the teacher's weights are where the recipe says "
                   "(nothing is read, no model is built); --no-files validates the recipe alone (CI).")
def recipe_check(recipe: Path, overrides: tuple[str, ...], files: bool) -> None:
    """Validate RECIPE; exit 0, or 2 with a message naming the file and key at fault (or the missing file)."""
    from advdistill.components import describe_missing, missing_files
    from advdistill.errors import DataError
    from advdistill.recipe import check_packages, load_recipe

    resolved = load_recipe(recipe, overrides)
    check_packages(resolved)  # an optional package a component needs (e.g. a tracker's)
    if not files:
        click.echo(f"ok: {recipe} (hash {resolved.hash}); files not checked (--no-files)")
        return
    problems = missing_files(resolved)
    if problems:
        raise DataError(f"{recipe} is a valid recipe (hash {resolved.hash}), but files it reads are missing "
                        f"(--no-files skips this check):\n{describe_missing(problems)}")
    present = [s for s in ("data", "teacher") if getattr(resolved, s) is not None]
    click.echo(f"ok: {recipe} (hash {resolved.hash}); files found: {', '.join(present)}")


@recipe_group.command("keys")
@click.argument("kind", required=False)
@click.argument("name", required=False)
@click.option("--markdown", is_flag=True, help="Print Markdown tables (as in docs/recipes.md).")
@click.option("--package", default=None, help="Only components registered by this distribution, e.g. advdistill.")
def recipe_keys(kind: str | None, name: str | None, markdown: bool, package: str | None) -> None:
    """Print every recipe key with its type, default, allowed values and meaning.

    Without KIND: the core tables ([optim], [train], [eval]) and every component. KIND is a core
    table (optim, train, eval) or a component kind (attack, objective, aux, schedule, model, teacher,
    dataset, metric, callback, step_extension); NAME one component of that kind (e.g. `recipe keys attack pgd`).
    """
    from advdistill.errors import did_you_mean
    from advdistill.recipe import reference

    choices = [*reference.CORE_TABLES, *reference.TABLE_KINDS]
    if kind is not None and kind not in choices:
        raise click.UsageError(
            f"unknown KIND {kind!r}.{did_you_mean(kind, choices)} KIND is one of {', '.join(choices)}."
        )
    if name is not None and kind in reference.CORE_TABLES:
        raise click.UsageError(f"[{kind}] is a core table: it takes no NAME")
    render = reference.markdown if markdown else reference.text
    click.echo(render(kind, name, package=package).rstrip("\n"))


# -- training and evaluation -----------------------------------------------------------------
@cli.command("train")
@_recipe_argument
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default: runs/<recipe name>).")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its last checkpoint, exactly (a run without one starts over).")
@click.option("--allow-recipe-change", is_flag=True,
              help="With --resume: accept a recipe that changes the learning rate, the epoch count, aux weights "
                   "or the other keys listed in docs/reliability.md (recorded in recipe.json and metrics.jsonl).")
@click.option("--init-from", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start the student from these weights (e.g. RUN/checkpoints/last.safetensors) instead of a "
                   "random initialisation; the optimizer starts afresh.")
@click.option("--init-partial", is_flag=True,
              help="With --init-from: load the tensors whose names and shapes match, keep the others random.")
@click.option("--seed", type=int, default=None, help="Shorthand for --set train.seed=N.")
@click.option("--device", default=None, help="Shorthand for --set train.device=D (auto, cpu, cuda, cuda:N).")
def train_command(
    recipe: Path, overrides: tuple[str, ...], out: Path | None, resume: bool, allow_recipe_change: bool,
    init_from: Path | None, init_partial: bool, seed: int | None, device: str | None,
) -> None:
    """Train the student described by RECIPE (a TOML file, or a run's recipe.json)."""
    from advdistill.api import train
    from advdistill.recipe import load_recipe

    if seed is not None:
        overrides = (*overrides, f"train.seed={seed}")
    if device is not None:
        overrides = (*overrides, f"train.device={json.dumps(device)}")
    if allow_recipe_change and not resume:
        raise click.UsageError("--allow-recipe-change goes with --resume")
    if init_partial and init_from is None:
        raise click.UsageError("--init-partial goes with --init-from")
    resolved = load_recipe(recipe, overrides)
    out = out or Path("runs") / resolved.name
    run_dir = train(resolved, out, resume=resume, allow_recipe_change=allow_recipe_change, init_from=init_from,
                    init_strict=not init_partial)
    _echo(f"run directory: {run_dir}")
    report = run_dir / "report.md"
    if report.exists() and _launched_rank() == 0:
        click.echo(report.read_text())


@cli.command("eval")
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Recipe for a checkpoint outside a run directory (with --checkpoint).")
@click.option("--checkpoint", default=None,
              help="Evaluate only this one: 'last', 'best', 'ema' (in RUN_DIR) or a .safetensors path. "
                   "Default: last, best and ema (those the run has), one row each; the report's "
                   "numbers are those of the recipe's [eval] checkpoint.")
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
@click.option("--checks/--no-checks", default=None,
              help="Run the evaluation sanity checks after the metrics (default: the recipe's [eval] checks, "
                   "on unless turned off; settings: --set eval.checks.n=500, ...).")
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
def eval_command(
    run_dirs: tuple[Path, ...], recipe_path: Path | None, checkpoint: str | None, metrics: str | None,
    out: Path | None, limit: int | None, batch_size: int | None, device: str | None, checks: bool | None,
    overrides: tuple[str, ...],
) -> None:
    """Evaluate RUN_DIR... (or --recipe R --checkpoint C), then run the sanity checks; write
    report.json, report.md, per_example.safetensors and plots/.

    With several RUN_DIRs, also print their comparison table and draw plots/gd_gc_vs_aa.png.
    """
    from advdistill.evaluation.api import evaluate_checkpoint, evaluate_run, joined_process_group
    from advdistill.evaluation.report import markdown
    from advdistill.recipe import load_recipe

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    options = dict(metrics=names, limit=limit, batch_size=batch_size, device=device, checks=checks)
    if not run_dirs:
        if recipe_path is None or checkpoint is None:
            raise click.UsageError("give a RUN_DIR, or both --recipe and --checkpoint")
        recipe = load_recipe(recipe_path, overrides)
        report = evaluate_checkpoint(recipe, checkpoint, out_dir=out or Path("."), **options)
        _echo(markdown(report))
        return
    several = len(run_dirs) > 1
    recipes = [load_recipe(recipe_path or run_dir / "recipe.json", overrides) for run_dir in run_dirs]
    with joined_process_group(recipes[0], device):  # under torchrun: one process group for every run
        for run_dir, recipe in zip(run_dirs, recipes):
            run_out = out / run_dir.name if several and out is not None else out
            report = evaluate_run(run_dir, recipe=recipe, checkpoint=checkpoint, out_dir=run_out, **options)
            _echo(markdown(report))
    if several and _launched_rank() == 0:
        _echo_comparison([out / d.name if out is not None else d for d in run_dirs], out or Path("."))


def _echo_comparison(run_dirs: list[Path], out: Path, paper: bool = False, cell: str | None = None) -> None:
    from advdistill.evaluation.compare import compare_runs
    from advdistill.rundir import run_dir_lock

    with run_dir_lock(out, "compare"):
        result = compare_runs(run_dirs, out, paper_required=paper, cell=cell)
    click.echo(result["table"])
    if result["paired_table"]:
        click.echo(result["paired_table"])
    if "paper_table" in result:
        click.echo(result["paper_table"])
    for path in result["plots"]:
        click.echo(f"wrote {path}")


@cli.command("compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Where comparison.md, comparison.json and plots/ (gd_gc_vs_aa.png, ...) go.")
@click.option("--paper", is_flag=True,
              help="Put each run beside its IGDM-paper cell (paper, ours, Δ); an error if a run's cell is unknown. "
                   "Runs trained from recipes/paper/ get this without the flag.")
@click.option("--cell", default=None, metavar="CELL",
              help="The paper cell of the (one) run, e.g. cifar100/resnet18/bdm_at/ard+igdm (implies --paper).")
def compare_command(run_dirs: tuple[Path, ...], out: Path, paper: bool, cell: str | None) -> None:
    """Print one paper-style table (Clean, PGD-20, AA, GD, GC) over the runs' report.json files,
    test each pair of runs image by image (paired difference, exact McNemar p-value, from their
    per_example.safetensors) and draw GD/GC vs AutoAttack with regression lines (the paper's Fig. 4).

    A run trained from a recipe of recipes/paper/ is also put beside the IGDM paper's numbers
    for its cell: paper, ours and Δ = ours − paper per metric."""
    _echo_comparison(list(run_dirs), out, paper=paper or cell is not None, cell=cell)


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
