"""``advdistill teacher convert`` and ``advdistill teacher list``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from advdistill import __version__
from advdistill.errors import CheckpointError, PluginError, RecipeError, did_you_mean
from advdistill_plugins.teachers.known import (
    DATASET_CLASSES,
    KNOWN,
    ROBUSTBENCH_THREATS,
    THREAT_MODELS,
    KnownTeacher,
    known_names,
)
from advdistill_plugins.teachers.layout import layout_dir


@click.group("teacher")
def teacher() -> None:
    """Teachers from RobustBench checkpoint files: list the known ones, convert .pt to safetensors, audit one."""


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


def layout_of(src: Path) -> tuple[str, str, str] | None:
    """``(dataset, threat_model, name)`` when ``src`` sits in RobustBench's layout
    (``.../<dataset>/<threat_model>/<name>.pt``), else None."""
    parts = src.parts
    if len(parts) >= 3 and parts[-3] in DATASET_CLASSES and parts[-2] in THREAT_MODELS:
        return parts[-3], parts[-2], src.stem
    return None


def sidecar_path(dst: Path) -> Path:
    """Where ``teacher convert`` writes the facts of DST: ``<DST without .safetensors>.json``."""
    return dst.with_suffix(".json")


def _infer(src: Path, arch: str | None, dataset: str | None, threat_model: str | None) -> tuple[str, str, str]:
    """``--arch``, ``--dataset`` and ``--threat-model``, those not given read from SRC's RobustBench path."""
    layout = layout_of(src)
    dataset = dataset or (layout[0] if layout else "cifar10")
    threat_model = threat_model or (layout[1] if layout else "Linf")
    if arch is None:
        if layout is not None and (dataset, threat_model, layout[2]) in KNOWN:
            arch = layout[2]
        else:
            known = [f"{e.dataset}/{e.threat_model}/{e.name}" for e in KNOWN.values() if e.name == src.stem]
            found = (f"{src.stem!r} is known here as {', '.join(known)}, not for {dataset}/{threat_model}"
                     if known else f"{src.stem!r} is not a RobustBench model known here (`advdistill teacher list`)")
            raise click.UsageError(
                f"--arch is needed: {found}. Give the RobustBench name (--arch NAME; with the file at "
                "<model_dir>/<dataset>/<threat_model>/<name>.pt it is read from the path) or a model kind "
                "with its parameters (--arch wideresnet --param depth=28 --param widen_factor=10)."
            )
    return arch, dataset, threat_model


def _mismatch_hint(model: Any, state: dict[str, Any], arch: str, dataset: str, threat_model: str) -> str:
    """What to change when SRC does not load: the data set its classifier's outputs point to, if another."""
    classes = DATASET_CLASSES[dataset]
    own = model.state_dict()
    outputs = {int(state[k].shape[0]) for k, v in own.items()
               if k in state and v.dim() >= 1 and v.shape[0] == classes and state[k].dim() == v.dim()
               and state[k].shape[0] != classes}
    others = [name for name, n in DATASET_CLASSES.items() if n in outputs and name != dataset]
    if others:
        other = others[0]
        rb = f" (a RobustBench model known for {other}/{threat_model})" if (other, threat_model, arch) in KNOWN else ""
        return (f"Its classifier has {DATASET_CLASSES[other]} outputs, so it is a {other} model{rb}, not a "
                f"{dataset} one ({classes} classes): pass --dataset {other}.")
    return "Are --arch (and its --param values) and --dataset those the checkpoint was trained with?"


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
@click.option("--arch", default=None, metavar="NAME",
              help="RobustBench model name (e.g. Chen2021LTD_WRN34_10) or a model kind (e.g. wrn_34_10). "
                   "Default: SRC's file name, when SRC is <dataset>/<threat model>/<name>.pt as RobustBench "
                   "saves it and the name is known here (`advdistill teacher list`).")
@click.option("--dataset", type=click.Choice(sorted(DATASET_CLASSES)), default=None,
              help="Data set the model was trained on (picks the class count and the table entry). "
                   "Default: the folder SRC's RobustBench path names, else cifar10.")
@click.option("--threat-model", type=click.Choice(THREAT_MODELS), default=None,
              help="RobustBench threat model of the checkpoint. Default: the folder SRC's path names, else Linf.")
@click.option("params", "--param", multiple=True, metavar="KEY=VALUE",
              help="An architecture parameter for a model kind, e.g. --param depth=28 (TOML value syntax).")
@click.option("--force", is_flag=True, help="Overwrite DST if it exists.")
def convert(
    src: Path, dst: Path, arch: str | None, dataset: str | None, threat_model: str | None, params: tuple[str, ...],
    force: bool,
) -> None:
    """Convert a trusted .pt/.pth checkpoint SRC into DST (a .safetensors file) plus a sidecar
    with the same name ending in .json (NAME.safetensors -> NAME.json).

    SRC is read with torch's tensors-only unpickler plus plain data (numpy numbers,
    argparse.Namespace); a file that needs anything else is refused, naming it, and nothing
    in it runs. The weights are unwrapped (state_dict / model_state_dict, module. / model.
    prefixes) and must load strictly into the architecture before anything is written. For
    models/cifar100/Linf/Name.pt (RobustBench's layout) the name, data set and threat model
    come from the path.
    """
    from advdistill.components import build_from_table
    from advdistill.engine.checkpoint import load_state_strict, save_weights
    from advdistill.io import atomic_write_text
    from advdistill_plugins.teachers.files import drop_redundant_buffers, read_state_dict, sha256_file

    if dst.suffix != ".safetensors":
        raise click.UsageError(f"DST must end in .safetensors, got {dst}")
    if dst.exists() and not force:
        raise click.UsageError(f"{dst} exists; pass --force to overwrite it")
    if src.resolve() == dst.resolve():
        raise click.UsageError("SRC and DST are the same file")
    arch, dataset, threat_model = _infer(src, arch, dataset, threat_model)
    model_table, entry = _architecture(arch, dataset, threat_model)
    if params and entry is not None:
        raise click.UsageError(f"--param is for model kinds; {arch} is a RobustBench name (fixed model)")
    model_table.update(_parse_params(params))
    try:
        model = build_from_table("model", model_table).build(
            num_classes=DATASET_CLASSES[dataset], in_chans=3
        )
    except (RecipeError, PluginError) as exc:
        raise click.UsageError(f"--arch {arch!r}: {exc}") from None
    state = read_state_dict(src, trust_pickle=True)
    state = drop_redundant_buffers(model, state, source=str(src))
    load_state_strict(model, state, source=f"{src} (--arch {arch}, --dataset {dataset})",
                      hint=_mismatch_hint(model, state, arch, dataset, threat_model))
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
    sidecar = sidecar_path(dst)
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
            "source": entry.source, "status": status, "path": os.fspath(path),
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for entry, row in zip(entries, rows):
        click.echo(f"{entry.name}  [{entry.dataset}/{entry.threat_model}, {entry.method}, "
                   f"model {entry.model['kind']}]")
        click.echo(f"    paper clean/PGD-20/AA: {_fmt(entry.paper, 3)}   "
                   f"RobustBench clean/AA: {_fmt(entry.leaderboard, 2)}")
        click.echo(f"    source: {entry.source}")
        click.echo(f"    {row['status']}: {row['path']}")


@teacher.command("audit")
@click.argument("recipe", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, metavar="NAME",
              help="A RobustBench model name (instead of RECIPE), e.g. Wang2023Better_WRN-28-10.")
@click.option("--dataset", type=click.Choice(sorted(DATASET_CLASSES)), default=None,
              help="With --name: the model's data set, whose test images it is audited on (default cifar10).")
@click.option("--threat-model", type=click.Choice(THREAT_MODELS), default="Linf", show_default=True,
              help="With --name: the RobustBench threat model.")
@click.option("--model-dir", default=None,
              help="RobustBench model directory ({model_dir}/{dataset}/{threat_model}/{name}); default: the "
                   "recipe's, or models.")
@click.option("--trust-pickle", is_flag=True, help="With --name: read a .pt file (pickle) you trust.")
@click.option("--data-root", default="data", show_default=True, help="With --name: where the data set's files are.")
@click.option("-n", "n", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Audit on the first N test images.")
@click.option("--attack", type=click.Choice(["pgd20", "apgd-ce", "none"]), default="pgd20", show_default=True,
              help="The quick robust accuracy: PGD-20 (step ε/4) or APGD-CE (AutoAttack's first attack), at the "
                   "recipe's threat model ([attack] norm and ε) or, with --name, RobustBench's (Linf 8/255, L2 0.5).")
@click.option("--eps", default=None, metavar="EPS",
              help="The attack's radius instead (a number or a fraction such as 8/255), at the same norm.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE", help="Override a value of RECIPE.")
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON.")
def audit(
    recipe: Path | None, name: str | None, dataset: str | None, threat_model: str, model_dir: str | None,
    trust_pickle: bool, data_root: str, n: int, attack: str, eps: str | None, device: str, batch_size: int,
    overrides: tuple[str, ...], as_json: bool,
) -> None:
    """Check a teacher: clean and quick robust accuracy on N test images beside its published numbers.

    The teacher is RECIPE's [teacher] on RECIPE's test images, or the RobustBench model --name.
    A clean accuracy near chance, or below the published one by more than 3 binomial standard
    errors (+ 0.5 points), is an error naming the likely causes (exit status 2).
    """
    from advdistill import load_recipe
    from advdistill.components import build, build_from_table, build_teacher, load_data
    from advdistill.config import as_float
    from advdistill.evaluation.teacher_audit import audit_teacher
    from advdistill.evaluation.threat import FROM_METRIC, ThreatModel, resolve_threat
    from advdistill.torch_utils import resolve_device

    if (recipe is None) == (name is None):
        raise click.UsageError("give a RECIPE or --name NAME (one of them)")
    if recipe is not None:
        if dataset is not None or trust_pickle:
            raise click.UsageError("--dataset and --trust-pickle go with --name; with RECIPE: --set teacher.KEY=VALUE")
        if model_dir is not None:
            overrides = (*overrides, f"teacher.model_dir={json.dumps(model_dir)}")
        resolved = load_recipe(recipe, overrides)
        if resolved.teacher is None:
            raise click.UsageError(f"{recipe} has no [teacher] table: nothing to audit")
        splits = load_data(resolved)
        model = build_teacher(resolved, splits.info)
        loader, label = resolved.teacher.build(), str(resolved.teacher.to_json().get("name") or recipe)
        threat = resolve_threat(resolved)
    else:
        dataset = dataset or "cifar10"
        table = {"kind": "robustbench", "name": name, "dataset": dataset, "threat_model": threat_model,
                 "model_dir": model_dir or "models", "trust_pickle": trust_pickle}
        loader, label = build_from_table("teacher", table), name
        if threat_model not in ROBUSTBENCH_THREATS and attack != "none":
            raise click.UsageError(f"the {threat_model} threat model is not a norm ball: audit it with --attack none")
        splits = build("dataset", dataset, root=data_root).load()
        model = loader.load(num_classes=splits.info.num_classes, in_chans=splits.info.in_chans)
        threat = ThreatModel(*ROBUSTBENCH_THREATS.get(threat_model, ("linf", 8 / 255)), "RobustBench")
    if eps is not None:
        try:
            radius = as_float(eps)
        except (TypeError, ValueError) as exc:
            raise click.BadParameter(f"expected a number or a fraction such as 8/255: {exc}", param_hint="--eps") \
                from None
        if not radius > 0:
            raise click.BadParameter(f"expected a radius > 0, got {eps}", param_hint="--eps")
        threat = ThreatModel(threat.norm, radius, FROM_METRIC)
    dev = resolve_device(device)
    result = audit_teacher(
        model.to(dev), splits.test_x, splits.test_y, num_classes=splits.info.num_classes, name=label,
        dataset=splits.info.name, published=loader.published_accuracy(), n=n,
        attack=None if attack == "none" else attack, threat=threat, device=dev, batch_size=batch_size,
        show_progress=True,
    )
    if as_json:
        click.echo(json.dumps(result.record(), indent=2))
    else:
        click.echo(_audit_text(result, dev))
    if result.status != "ok":
        raise CheckpointError(result.message())


def _audit_text(result: Any, device: Any) -> str:
    from advdistill.evaluation.threat import threat_text

    pub = result.published
    lines = [f"teacher {result.name} on the first {result.n} test images of {result.dataset} ({device}):"]
    verdict = {"ok": "ok", "near_chance": "NEAR CHANCE", "below_published": "BELOW PUBLISHED"}[result.status]
    if pub is not None:
        lines.append(f"  clean       {result.clean:6.2f} %   published {pub.clean:.2f} %, tolerance "
                     f"{result.tolerance:.2f} points   {verdict}")
    else:
        lines.append(f"  clean       {result.clean:6.2f} %   nothing published for this teacher; "
                     f"near-chance limit {result.chance_limit:.2f} %   {verdict}")
    if result.robust is not None:
        shown = {"pgd20": "PGD-20", "apgd-ce": "APGD-CE"}[result.attack]
        refs = [f"{label} {value:.2f} %" for label, value in
                (("PGD-20", pub and pub.pgd20), ("AutoAttack", pub and pub.autoattack)) if value is not None]
        threat = threat_text(result.threat["norm"], result.threat["eps"])
        compared = refs and not result.threat_differs_from_published()
        lines.append(f"  {shown:<10}  {result.robust:6.2f} %   at {threat}, on {result.robust_n} images"
                     + (f"; published {', '.join(refs)}" if compared else "")
                     + (f"; published numbers are at {threat_text(pub.norm, pub.eps)}: not compared"
                        if refs and not compared else ""))
    lines += [f"  warning: {w}" for w in result.warnings]
    if pub is not None and pub.source:
        lines.append(f"  source: {pub.source}")
    return "\n".join(lines)
