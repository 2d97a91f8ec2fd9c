"""Print the one summary table of a ``gpu_suite.sh`` run from the files it wrote.

Usage: ``python benchmarks/suite_table.py RUN_DIR`` (the suite calls it at the end). Reads
``status.tsv`` (step, exit code, seconds, note) and the JSON that each step printed; prints
Markdown, ready to paste into the README.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: the issue's targets for the paper's models on an H100/H200-class GPU (ms per step, batch 128)
TARGET_MS = {"pgd_at": 20.0, "rslad+igdm": 30.0, "adaad+igdm": 110.0, "adaad+igdm-no-tin": 35.0}
RATIO_TARGET = 1.03
IGDM_TARGET = 1.05


def read_json(path: Path) -> Any:
    """The last JSON line of a step's output (the scripts print one), or None."""
    if not path.exists():
        return None
    for line in reversed(path.read_text().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def read_status(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "status.tsv"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        name, rc, seconds, *note = line.split("\t")
        rows.append({"name": name, "rc": rc, "seconds": seconds, "note": note[0] if note else ""})
    return rows


def step_rows(run_dir: Path, status: list[dict[str, str]]) -> list[str]:
    lines = [
        "| preset | settings | framework ms/step | s/epoch (50k) | plain ms/step | ratio | same loss | peak MiB |"
        " target ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in status:
        data = read_json(run_dir / f"{row['name']}.json")
        if not data or "results" not in data:
            continue
        settings = ", ".join(o.removeprefix("train.") for o in data.get("overrides", [])) or "defaults (eager)"
        for r in data["results"]:
            fw, plain = r.get("framework", {}), r.get("plain", {})
            check = r.get("check", {})
            ratio = r.get("ratio")
            flag = "" if ratio is None or ratio <= RATIO_TARGET else " ✗"
            target = TARGET_MS.get(r["name"]) if data.get("scale") == "paper" else None
            target_cell = "" if target is None else f"{target:g} {'✓' if fw.get('ms_per_step', 1e9) <= target else '✗'}"
            lines.append(
                f"| {r['name']} | {settings} | {_num(fw.get('ms_per_step'))} | {_num(fw.get('s_per_epoch'), 1)} | "
                f"{_num(plain.get('ms_per_step'))} | {_num(ratio, 3)}{flag} | "
                f"{'yes' if check.get('same') else ('NO' if check else '-')} | {_num(fw.get('peak_mib'), 0)} | "
                f"{target_cell} |"
            )
    return lines


def igdm_rows(run_dir: Path, status: list[dict[str, str]]) -> list[str]:
    lines = ["| base | settings | base ms/step | +IGDM ms/step | ratio |", "|---|---|---|---|---|"]
    for row in status:
        data = read_json(run_dir / f"{row['name']}.json")
        if not data or "igdm_ms_per_step" not in data:
            continue
        teacher_heavy = data["base"] in ("adaad", "rslad")
        flag = " ✗" if teacher_heavy and data["ratio"] > IGDM_TARGET else ""
        settings = ", ".join(o.removeprefix("train.") for o in data.get("overrides", [])) or "defaults (eager)"
        lines.append(f"| {data['base']} | {settings} | {data['base_ms_per_step']:.1f} | "
                     f"{data['igdm_ms_per_step']:.1f} | {data['ratio']:.3f}{flag} |")
    return lines


def autoattack_rows(run_dir: Path, status: list[dict[str, str]]) -> list[str]:
    lines = ["| model | images attacked | batch | seconds at the timed scales | 10k images, full budget |",
             "|---|---|---|---|---|"]
    for row in status:
        data = read_json(run_dir / f"{row['name']}.json")
        if not data or "estimated_s" not in data:
            continue
        timed = ", ".join(f"x{f:g}: {s:.1f}" for f, s in zip(data["fractions"], data["seconds"]))
        kind = "measured" if data["measured"] else "estimated"
        lines.append(f"| {data['model']} | {data['images_attacked']} | {data['batch_size']} | {timed} | "
                     f"{data['estimated_s']:.0f} s = {data['estimated_s'] / 3600:.2f} h ({kind}) |")
    return lines


def _num(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.splitlines()[0], "\nusage: python benchmarks/suite_table.py RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(args[0])
    status = read_status(run_dir)
    env = (run_dir / "env.log").read_text().strip() if (run_dir / "env.log").exists() else "unknown"
    out = [f"## GPU suite: {env}", "", "### Training step (framework vs plain PyTorch loop)", ""]
    out += step_rows(run_dir, status)
    out += ["", "### IGDM on top of its base", "", *igdm_rows(run_dir, status)]
    out += ["", "### Standard AutoAttack, every image unbreakable (the worst case)", ""]
    out += autoattack_rows(run_dir, status)
    pytest_log = run_dir / "pytest-cuda.log"
    if pytest_log.exists():
        lines = [ln for ln in pytest_log.read_text().splitlines() if ln.strip()]
        out += ["", "### pytest -m cuda", "", f"`{lines[-1] if lines else 'no output'}`"]
    out += ["", "### Steps", "", "| step | exit code | seconds | note |", "|---|---|---|---|"]
    out += [f"| {r['name']} | {r['rc']} | {r['seconds']} | {r['note']} |" for r in status]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
