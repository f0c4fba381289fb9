"""`make bench-debug`: what `debug --artifact` costs against the build's own verification, on
one artifact (default: EfficientNet-Lite0, `intel`, int8; the debug issue's bound is 3×).

Builds the artifact once (through the stage cache), then alternates `verify --artifact` and
`debug --artifact` as whole processes so the machine's noise falls on both, and reports medians
with every run:
- in process: `debug.json` → `seconds` (float reference, observed engine, comparison) against
  the build's verify stage (`build.json` → `stage_seconds.verify`);
- whole commands: `debug` against `verify` (both pay Python's start and their imports).

    python bench/debug_cost.py --model efficientnet-lite0 --target intel --precision int8 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _run(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "compiler", *args], cwd=REPO, check=True, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _line(name: str, xs: list[float]) -> str:
    return f"{name:<34} median {statistics.median(xs):6.2f} s   runs {' '.join(f'{x:.2f}' for x in xs)}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--target", default="intel")
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-debug-") as d:
        art, dbg = Path(d) / "artifact", Path(d) / "debug"
        _run("build", "--quiet", "--model", args.model, "--target", args.target, "--precision", args.precision,
             "--out", str(art))
        stage = json.loads((art / "build.json").read_text())["stage_seconds"]["verify"]
        verify_cmd, debug_cmd, localize = [], [], []
        for _ in range(args.rounds):
            verify_cmd.append(_run("verify", "--artifact", str(art)))
            debug_cmd.append(_run("debug", "--quiet", "--artifact", str(art), "--out", str(dbg)))
            localize.append(json.loads((dbg / "debug.json").read_text())["seconds"])
    ratio_in = statistics.median(localize) / stage
    ratios_cmd = [a / b for a, b in zip(debug_cmd, verify_cmd)]
    print(f"{args.model} {args.target} {args.precision}, {args.rounds} interleaved rounds")
    print(f"{'build verify stage (build.json)':<34} {stage:6.2f} s")
    print(_line("debug.json seconds (in process)", localize) + f"   ratio to the verify stage {ratio_in:.2f}×")
    print(_line("`verify --artifact` (whole)", verify_cmd))
    print(_line("`debug --artifact` (whole)", debug_cmd)
          + f"   ratio per pair: median {statistics.median(ratios_cmd):.2f}× "
            f"(min {min(ratios_cmd):.2f}, max {max(ratios_cmd):.2f})")
    if args.json:
        args.json.write_text(json.dumps({"verify_stage": stage, "localize": localize, "verify_command": verify_cmd,
                                         "debug_command": debug_cmd, "ratio_in_process": ratio_in,
                                         "ratio_commands": ratios_cmd}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
