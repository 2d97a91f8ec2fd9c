"""One study run in its own process: ``python -m advdistill.study.worker --recipe R --out DIR [--set K=V]...``.

`advdistill study --jobs N` starts these (one thread each); the exit status is 0 when the run
has its report.json, 2 with a one-line message for advdistill's own errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from advdistill.errors import AdvDistillError
from advdistill.study.runner import execute_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m advdistill.study.worker", description=__doc__)
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--expect-hash", default=None)
    args = parser.parse_args(argv)
    try:
        execute_run(args.recipe, args.overrides, args.out, resume=args.resume, expect_hash=args.expect_hash)
    except AdvDistillError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
