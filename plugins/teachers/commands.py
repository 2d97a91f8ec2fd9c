"""``advdistill teacher convert`` and ``advdistill teacher list``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from advdistill import __version__
from advdistill.errors import PluginError, RecipeError, did_you_mean
from advdistill_plugins.teachers.robustbench import (
    DATASET_CLASSES,
    KNOWN,
    THREAT_MODELS,
    KnownTeacher,
    known_names,
    layout_dir,
)


@click.group("teacher")
def teacher() -> None:
    """Teachers from RobustBench checkpoint files: list the known ones, convert .pt to safetensors."""


def _architecture(arch: str, dataset: str, threat_model: str) -> tuple[dict[str, Any], KnownTeacher | None]:
    """``--arch``: a RobustBench name of the table, or a model kind (``wrn_34_10``, ``timm:...``)."""
    from advdistill.plugins import get_registry

    entry = KNOWN.get((dataset, threat_model, arch))
    if entry is not None:
        return dict(entry.model), entry
    if ("model", arch) in get_registry():
        return {"kind": arch}, None
    names = known_names(dataset, threat_model)
    raise click.UsageError(
        f"--arch {arch!r} is neither a RobustBench model known for {dataset}/{threat_model} "
        f"({', '.join(names)}) nor a model kind (`advdistill plugins --kind model`)."
        f"{did_you_mean(arch, [*names, *get_registry().names('model')])}"
    )


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    from advdistill.recipe.loading import parse_override

    out = {}
    for text in items:
        try:
            (key, *rest), value = parse_override(text)
        except RecipeError:
            raise click.UsageError(f"--param {text!r}: expected KEY=VALUE, e.g. --param depth=28") from None
        if rest:
            raise click.UsageError(f"--param {text!r}: KEY is a parameter name, without dots")
        out[key] = value
    return out


@teacher.command("convert")
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--arch", required=True, metavar="NAME",
              help="RobustBench model name (e.g. Chen2021LTD_WRN34_10) or a model kind (e.g. wrn_34_10).")
@click.option("--dataset", type=click.Choice(sorted(DATASET_CLASSES)), default="cifar10", show_default=True,
              help="Data set the model was trained on (picks the class count and the table entry).")
@click.option("--threat-model", type=click.Choice(THREAT_MODELS), default="Linf", show_default=True,
              help="RobustBench threat model of the checkpoint.")
@click.option("params", "--param", multiple=True, metavar="KEY=VALUE",
              help="An architecture parameter for a model kind, e.g. --param depth=28 (TOML value syntax).")
@click.option("--force", is_flag=True, help="Overwrite DST if it exists.")
def convert(
    src: Path, dst: Path, arch: str, dataset: str, threat_model: str, params: tuple[str, ...], force: bool
) -> None:
    """Convert a trusted .pt/.pth checkpoint SRC into DST.safetensors plus a DST.json sidecar.

    SRC is read with torch's tensors-only unpickler plus plain data (numpy numbers,
    argparse.Namespace); a file that needs anything else is refused, naming it, and nothing
    in it runs. The weights are unwrapped (state_dict / model_state_dict, module. / model.
    prefixes) and must load strictly into the architecture before anything is written.
    """
    from advdistill.api import build
    from advdistill.engine.checkpoint import atomic_write_text, load_state_strict, save_weights
    from advdistill_plugins.teachers.files import drop_redundant_buffers, read_state_dict, sha256_file

    if dst.suffix != ".safetensors":
        raise click.UsageError(f"DST must end in .safetensors, got {dst}")
    if dst.exists() and not force:
        raise click.UsageError(f"{dst} exists; pass --force to overwrite it")
    if src.resolve() == dst.resolve():
        raise click.UsageError("SRC and DST are the same file")
    model_table, entry = _architecture(arch, dataset, threat_model)
    if params and entry is not None:
        raise click.UsageError(f"--param is for model kinds; {arch} is a RobustBench name (fixed model)")
    model_table.update(_parse_params(params))
    kwargs = {k: v for k, v in model_table.items() if k != "kind"}
    try:
        model = build("model", model_table["kind"], **kwargs).build(
            num_classes=DATASET_CLASSES[dataset], in_chans=3
        )
    except (RecipeError, PluginError) as exc:
        raise click.UsageError(f"--arch {arch!r}: {exc}") from None
    state = read_state_dict(src, trust_pickle=True)
    state = drop_redundant_buffers(model, state, source=str(src))
    load_state_strict(model, state, source=f"{src} (--arch {arch}, --dataset {dataset})")
    meta = {
        "arch": arch,
        "model": model_table,
        "dataset": dataset,
        "threat_model": threat_model,
        "num_classes": DATASET_CLASSES[dataset],
        "source": os.fspath(src),
        "source_sha256": sha256_file(src),
        "converted_by": f"advdistill {__version__}",
    }
    if entry is not None:
        meta["robustbench_name"] = entry.name
    save_weights(dst, model, meta)
    meta["sha256"] = sha256_file(dst)
    sidecar = dst.with_suffix(".json")
    atomic_write_text(sidecar, json.dumps(meta, indent=2) + "\n")
    size = dst.stat().st_size / 2**20
    click.echo(f"wrote {dst} ({len(state)} tensors, {size:.1f} MiB, sha256 {meta['sha256']})")
    click.echo(f"wrote {sidecar}")
    if entry is not None:
        layout = layout_dir("<model_dir>", dataset, threat_model) / f"{entry.name}.safetensors"
        click.echo(f'use it: [teacher] kind = "robustbench", name = "{entry.name}", dataset = "{dataset}" '
                   f'with the file at {layout} (or path = "{dst}")')


def _status(entry: KnownTeacher, model_dir: str) -> tuple[str, Path]:
    folder = layout_dir(model_dir, entry.dataset, entry.threat_model)
    st, pt = folder / f"{entry.name}.safetensors", folder / f"{entry.name}.pt"
    if st.is_file():
        return "safetensors", st
    if pt.is_file():
        return "pt (needs trust_pickle or convert)", pt
    return "missing", st


def _fmt(values: tuple[float, ...] | None, n: int) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else " / ".join(["-"] * n)


@teacher.command("list")
@click.option("--model-dir", default="models", show_default=True,
              help="RobustBench model directory to look in ({model_dir}/{dataset}/{threat_model}/{name}).")
@click.option("--dataset", type=click.Choice(sorted(DATASET_CLASSES)), default=None,
              help="Only teachers of this data set.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_teachers(model_dir: str, dataset: str | None, as_json: bool) -> None:
    """Known RobustBench teachers: paper (Table 1) and leaderboard accuracy, expected file, status."""
    entries = sorted((e for e in KNOWN.values() if dataset in (None, e.dataset)),
                     key=lambda e: (e.dataset, e.threat_model, e.name))
    rows = []
    for entry in entries:
        status, path = _status(entry, model_dir)
        rows.append({
            "name": entry.name, "dataset": entry.dataset, "threat_model": entry.threat_model,
            "method": entry.method, "model": dict(entry.model),
            "paper": dict(zip(("clean", "pgd20", "autoattack"), entry.paper)) if entry.paper else None,
            "leaderboard": (dict(zip(("clean", "autoattack"), entry.leaderboard))
                            if entry.leaderboard else None),
            "status": status, "path": os.fspath(path),
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for entry, row in zip(entries, rows):
        click.echo(f"{entry.name}  [{entry.dataset}/{entry.threat_model}, {entry.method}, "
                   f"model {entry.model['kind']}]")
        click.echo(f"    paper clean/PGD-20/AA: {_fmt(entry.paper, 3)}   "
                   f"RobustBench clean/AA: {_fmt(entry.leaderboard, 2)}")
        click.echo(f"    {row['status']}: {row['path']}")
