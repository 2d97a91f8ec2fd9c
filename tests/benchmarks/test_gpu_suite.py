"""benchmarks/gpu_suite.sh lists its steps with commands the scripts accept; suite_table.py's table."""

import json
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def dry_run() -> dict[str, list[str]]:
    out = subprocess.run(["bash", "benchmarks/gpu_suite.sh", "--dry-run"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    steps = {}
    for line in out.splitlines():
        name, rest = line.split(maxsplit=1)
        steps[name] = shlex.split(rest.split(")", 1)[1])
    return steps


def test_every_step_is_listed_and_its_options_parse(benchmark_script):
    steps = dry_run()
    assert list(steps)[:8] == ["steps-eager", "steps-fast-pgd_at", "steps-fast-adaad+igdm", "pytest-cuda",
                               "igdm-adaad", "igdm-rslad", "aa-resnet18", "aa-wrn-28-10"]
    assert {"steps-fast-rslad+igdm", "steps-fast-adaad+igdm-no-tin", "steps-cheap"} <= set(steps)
    parsed = 0
    for name, command in steps.items():
        python, script, *args = command
        assert python == "python3", name  # the GPU image's interpreter
        if script == "-m":
            files = [a for a in args if a.endswith(".py")]
            assert args[:3] == ["pytest", "-m", "cuda"] and "tests/engine/test_cuda.py" in files, name
            assert all((ROOT / f).exists() for f in files)
            continue
        module = benchmark_script(Path(script).stem)
        module.parse_args(args)  # exits (SystemExit) on an unknown option or a bad value
        parsed += 1
    assert parsed == len(steps) - 1
    fast = steps["steps-fast-pgd_at"]
    for key in ("compile", "compile_teacher", "teacher_bf16", "cudnn_benchmark"):
        assert f"train.{key}=true" in fast
    assert "train.compile_mode=reduce-overhead" in fast and "train.optimizer_impl=fused" in fast


def test_summary_table(benchmark_script, tmp_path, capsys):
    suite_table = benchmark_script("suite_table")
    (tmp_path / "env.log").write_text("NVIDIA H200, torch 2.11.0, CUDA 12.8\n")
    (tmp_path / "status.tsv").write_text(
        "steps-eager\t0\t80\t\nigdm-adaad\t0\t40\t\naa-wrn-28-10\t0\t200\t\npytest-cuda\t1\t100\t\n"
        "steps-fast\t124\t330\ttime limit reached\n"
    )
    step = {"framework": {"ms_per_step": 18.0, "s_per_epoch": 7.0, "peak_mib": 2048.0},
            "plain": {"ms_per_step": 17.9}, "check": {"same": True}, "ratio": 1.006}
    (tmp_path / "steps-eager.json").write_text(json.dumps({
        "scale": "paper", "overrides": [],
        "results": [{"name": "pgd_at", **step}, {"name": "adaad+igdm", **step, "ratio": 1.2,
                                                 "framework": {**step["framework"], "ms_per_step": 130.0}}],
    }) + "\n")
    (tmp_path / "igdm-adaad.json").write_text(json.dumps({
        "base": "adaad", "base_ms_per_step": 100.0, "igdm_ms_per_step": 104.0, "ratio": 1.04, "overrides": []}))
    (tmp_path / "aa-wrn-28-10.json").write_text("log line\n" + json.dumps({
        "model": "wrn-28-10", "images_attacked": 1024, "batch_size": 1024, "fractions": [0.02, 0.06],
        "seconds": [10.0, 20.0], "estimated_s": 7200.0, "measured": False}))
    (tmp_path / "pytest-cuda.log").write_text("....F\n1 failed, 20 passed in 90.00s\n")
    assert suite_table.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA H200" in out
    assert "| pgd_at | defaults (eager) | 18.00 | 7.0 | 17.90 | 1.006 | yes | 2048 | 20 ✓ |" in out
    assert "| adaad+igdm | defaults (eager) | 130.00 | 7.0 | 17.90 | 1.200 ✗ | yes | 2048 | 110 ✗ |" in out
    assert "| adaad | defaults (eager) | 100.0 | 104.0 | 1.040 |" in out
    assert "7200 s = 2.00 h (estimated)" in out
    assert "`1 failed, 20 passed in 90.00s`" in out
    assert "| steps-fast | 124 | 330 | time limit reached |" in out
