"""`advdistill eval` end to end: every kind of metric, report files, plots, several runs."""

import json

import pytest

import advdistill as ad
from advdistill.evaluation.records import read_per_example

QUICK_AA = {"version": "custom", "attacks": ["apgd-ce"], "n_iter": 3, "n_restarts": 1,
            "backend": "pyautoattack"}
METRICS = {
    "clean": {"kind": "clean"},
    "pgd": {"kind": "pgd", "steps": 2},
    "aa": {"kind": "autoattack", **QUICK_AA},
    "gd": {"kind": "grad_alignment"},
    "pointwise": {"kind": "pointwise", "adv_steps": 2},
    "transfer": {"kind": "transfer", "surrogate": "teacher", "steps": 2, "n_neighbors": 2},
    "eps": {"kind": "eps_curve", "eps": ["4/255", "8/255"], "steps": 2, "autoattack": QUICK_AA},
    "linearity": {"kind": "linearity"},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A teacher and two students distilled from it (one with IGDM), with the linearity callback."""
    from advdistill.testing import TINY_RECIPE, to_toml

    root = tmp_path_factory.mktemp("runs")

    def recipe(name, **tables):
        data = {**TINY_RECIPE, **tables}
        path = root / f"{name}.toml"
        path.write_text(to_toml(data))
        return path

    teacher = ad.train(recipe("teacher", eval={"at_end": False}), root / "teacher")
    student = dict(
        teacher={"kind": "checkpoint", "path": str(teacher / "checkpoints" / "last.safetensors")},
        attack={"kind": "rslad_kl", "steps": 2}, objective={"kind": "rslad"},
        callbacks={"progress": False, "linearity": {"kind": "linearity", "limit": 8}},
        data={**TINY_RECIPE["data"], "val_size": 16},
        eval={"at_end": False, "metrics": METRICS},
        train={"epochs": 2, "batch_size": 16, "log_every": 2, "device": "cpu"},
    )
    plain = ad.train(recipe("rslad", **student), root / "rslad")
    igdm = ad.train(recipe("igdm", aux={"igdm": {"kind": "igdm", "alpha": 1.0}}, **student), root / "igdm")
    return plain, igdm


def test_eval_writes_every_metric_the_report_and_the_plots(cli_runner, runs, tmp_path):
    out = tmp_path / "eval"
    result = cli_runner("eval", str(runs[0]), "--limit", "8", "--batch-size", "4", "--out", str(out))
    report = json.loads((out / "report.json").read_text())
    assert report["errors"] == {} and report["n_examples"] == 8
    expected = {"clean", "pgd2", "autoattack", "gd", "gc", "pointwise_zero", "pointwise_uniform",
                "pointwise_adv", "transfer_vmi_fgsm", "eps_curve", "linearity_remainder"}
    assert set(report["metrics"]) == expected
    assert [set(p) for p in report["metrics"]["eps_curve"]] == [{"eps", "pgd2", "autoattack"}] * 2
    assert report["plots"] == ["plots/eps_curve.png", "plots/training.png", "plots/linearity.png"]
    assert all((out / p).read_bytes().startswith(b"\x89PNG") for p in report["plots"])
    assert "| Clean | AA | GD ↓ | GC ↑ |" in result.stdout == (out / "report.md").read_text() + "\n"
    # per image, for every accuracy: correct (clean) or robust (attacks), by checkpoint and report key
    records = read_per_example(out)
    assert set(records) == {"last"} == set(report["checkpoints"])  # no periodic evaluation: no best
    curve = [f"eps_curve@{eps:.6g}/{key}" for eps in (4 / 255, 8 / 255) for key in ("pgd2", "autoattack")]
    assert set(records["last"]) == {"clean", "pgd2", "autoattack", "transfer_vmi_fgsm", *curve}
    for name, row in report["checkpoints"].items():
        metrics = row["metrics"]
        values = {**metrics, **{f"eps_curve@{p['eps']:.6g}/{k}": p[k] for p in metrics["eps_curve"] for k in p}}
        for key, flags in records[name].items():
            assert flags.shape == (8,) and 100.0 * flags.float().mean().item() == pytest.approx(values[key]), key


def test_a_failing_metric_is_in_the_report_and_the_others_too(cli_runner, runs, tmp_path):
    out = tmp_path / "eval"
    cli_runner("eval", str(runs[0]), "--metrics", "clean,transfer", "--limit", "4", "--out", str(out),
               "--set", 'eval.metrics.transfer.surrogate={kind = "checkpoint", path = "missing.safetensors"}')
    report = json.loads((out / "report.json").read_text())
    assert set(report["metrics"]) == {"clean"}
    error = report["errors"]["transfer"]
    assert "CheckpointError" in error and "missing.safetensors" in error
    assert "## Metrics that failed" in (out / "report.md").read_text()


def test_eval_of_several_runs_compares_them(cli_runner, runs, tmp_path):
    out = tmp_path / "both"
    result = cli_runner("eval", *map(str, runs), "--metrics", "clean,pgd,aa,gd", "--limit", "8",
                        "--out", str(out))
    for run in runs:
        assert json.loads((out / run.name / "report.json").read_text())["errors"] == {}
    assert "| run | checkpoint | images | threat model | Clean | PGD-20 | AA | GD ↓ | GC ↑ |" in result.output
    assert (out / "plots" / "gd_gc_vs_aa.png").exists() and (out / "comparison.md").exists()
    # compare reads the same reports again
    again = cli_runner("compare", *(str(out / run.name) for run in runs), "--out", str(tmp_path / "c"))
    def rows(output):
        return [line for line in output.splitlines() if line.startswith(("| rslad |", "| igdm |"))]

    assert len(rows(again.output)) == 2 and rows(again.output) == rows(result.output)[-2:]


def test_eval_on_a_full_disk_keeps_the_earlier_report(tiny_recipe, tmp_path):
    import os
    import resource
    import subprocess
    import sys

    run = ad.train(tiny_recipe(), tmp_path / "run")
    before = (run / "report.json").read_text()

    def limit():  # in the child: files beyond 300 bytes fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))

    result = subprocess.run([sys.executable, "-m", "advdistill.cli", "eval", str(run), "--metrics", "clean"],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=limit, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "Writing the evaluation's files into" in result.stderr and "File too large" in result.stderr
    assert (run / "report.json").read_text() == before and not list(run.glob(".*.tmp"))
