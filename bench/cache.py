"""`make bench-cache`: a cold build against a warm rebuild with nothing changed, through the
persistent stage cache, as whole processes (what a CI job or `make build` pays).

Each round: a cold build (empty cache directory) and a warm rebuild (the cache that cold build
filled), run alternately so the machine's noise falls on both; medians and the ratio are
reported with every run's time, and each warm artifact must be byte-identical to its cold one
(all files but build.json) with every stage served from the cache.

    python bench/cache.py --model efficientnet-lite0 --target intel --precision int8 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _build(model: str, target: str, precision: str, out: Path, cache: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "compiler", "build", "--quiet", "--model", model, "--target", target,
                    "--precision", precision, "--out", str(out), "--cache", str(cache)], cwd=REPO, check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - t0


def _content(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("build.json", "report.html")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--target", default="intel")
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as d:
        root = Path(d)
        for r in range(args.rounds):
            cache = root / f"cache{r}"
            cold.append(_build(args.model, args.target, args.precision, root / f"cold{r}", cache))
            warm.append(_build(args.model, args.target, args.precision, root / f"warm{r}", cache))
            stages = json.loads((root / f"warm{r}" / "build.json").read_text())["cache"]["stages"]
            if set(stages.values()) != {"hit"}:
                print(f"round {r}: not every stage was served from the cache: {stages}", file=sys.stderr)
                return 1
            if _content(root / f"cold{r}") != _content(root / f"warm{r}"):
                print(f"round {r}: the warm artifact differs from the cold one", file=sys.stderr)
                return 1
            print(f"round {r}: cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s", file=sys.stderr)
            shutil.rmtree(cache)
    result = {"model": args.model, "target": args.target, "precision": args.precision, "rounds": args.rounds,
              "cold_s": [round(x, 2) for x in cold], "warm_s": [round(x, 2) for x in warm],
              "cold_median_s": round(statistics.median(cold), 2), "warm_median_s": round(statistics.median(warm), 2),
              "speedup": round(statistics.median(cold) / statistics.median(warm), 2), "byte_identical": True}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
