"""`advdistill eval` says what it is doing without -v, also when its output goes to a file or a pipe:
one line per checkpoint, per metric and per run of the sanity checks, on stderr (stdout keeps the
report)."""

import os
import subprocess
import sys

import advdistill as ad
from advdistill.testing import TINY_RECIPE


def test_progress_lines_by_default_when_stdout_is_not_a_terminal(tiny_recipe, tmp_path):
    run = ad.train(tiny_recipe(eval={**TINY_RECIPE["eval"], "at_end": False}), tmp_path / "run")
    result = subprocess.run(
        [sys.executable, "-m", "advdistill.cli", "eval", str(run), "--metrics", "clean,pgd", "--no-checks"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("eval: ")]
    assert lines[0] == "eval: checkpoint last (epoch 1): clean, pgd on 32 test images"
    assert lines[1].startswith("eval: [1/2] clean: clean = ") and lines[1].endswith(" s")
    assert lines[2].startswith("eval: [2/2] pgd: pgd2 = ") and " % (Linf ε = 8/255) on 32 images, " in lines[2]
    assert len(lines) == 3  # one line per metric (and one per checkpoint)
    assert result.stdout.startswith("# Evaluation report") and "eval: " not in result.stdout
