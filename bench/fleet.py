"""`make bench-fleet`: the zoo matrix (bench/fleets/zoo.toml) cold with `--jobs 1`, `--jobs 2` and
`--ray local` (each from an empty cache), then warm (the `--jobs 2` cache again, nothing changed);
rows per minute, speed-ups, and a projection for N nodes from the measured per-row times.

Each run is a whole `python -m compiler matrix` process. The projection assumes each node runs
as many rows at once as it has cores (2 here) and the rows keep the durations measured in the
`--jobs 1` run: the makespan of longest-first scheduling on N × 2 slots, never below the longest
row.

    python bench/fleet.py --fleet bench/fleets/zoo.toml --out build/bench/fleet
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _matrix(fleet: Path, out: Path, cache: Path, *extra: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "compiler", "matrix", str(fleet), "--out", str(out), "--cache", str(cache),
                        "--quiet", *extra], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                       text=True)
    wall = time.perf_counter() - t0
    s = json.loads((out / "summary.json").read_text())
    s["wall_s"] = round(wall, 1)
    s["exit"] = r.returncode
    if r.returncode != 0:
        print(r.stderr[-2000:], file=sys.stderr)
    return s


def _makespan(durations: list[float], slots: int) -> float:
    heap = [0.0] * slots
    for d in sorted(durations, reverse=True):
        heapq.heappush(heap, heapq.heappop(heap) + d)
    return max(heap)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fleet", type=Path, default=REPO / "bench" / "fleets" / "zoo.toml")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "fleet")
    ap.add_argument("--skip-ray", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {}
    caches = args.out / "caches"
    shutil.rmtree(caches, ignore_errors=True)
    for name, extra in (("cold --jobs 1", ["--jobs", "1"]), ("cold --jobs 2", ["--jobs", "2"]),
                        ("cold --ray local", ["--ray", "local", "--jobs", "2"])):
        if "ray" in name and args.skip_ray:
            continue
        print(f"{name} …", file=sys.stderr)
        runs[name] = _matrix(args.fleet, args.out / name.replace(" ", "_").replace("-", ""), caches / name.replace(" ", "_"), *extra)
    print("warm --jobs 2 …", file=sys.stderr)
    runs["warm --jobs 2"] = _matrix(args.fleet, args.out / "warm_jobs2", caches / "cold_--jobs_2", "--jobs", "2")
    rows = runs["cold --jobs 1"]["rows"]
    per_row = [r["seconds"] for r in runs["cold --jobs 1"]["results"] if r.get("seconds")]
    lines = ["| run | exit | rows passed | wall s | rows/min | vs cold --jobs 1 |", "|---|---|---|---|---|---|"]
    base = runs["cold --jobs 1"]["wall_s"]
    for name, s in runs.items():
        lines.append(f"| {name} | {s['exit']} | {s['rows_passed']}/{s['rows']} | {s['wall_s']} | "
                     f"{round(rows / (s['wall_s'] / 60), 2)} | {base / s['wall_s']:.2f}× |")
    projection = {n: round(_makespan(per_row, 2 * n), 1) for n in (1, 2, 4, 8)}
    lines += ["", f"Longest row {max(per_row):.1f} s; sum of rows {sum(per_row):.1f} s (cold, one at a time).",
              "Projected cold wall time on N nodes of 2 cores (longest-first on 2N slots, per-row times above): "
              + ", ".join(f"N={n}: {v} s" for n, v in projection.items()) + "."]
    result = {"fleet": str(args.fleet.relative_to(REPO)) if args.fleet.is_relative_to(REPO) else str(args.fleet),
              "runs": {k: {x: v[x] for x in ("exit", "rows", "rows_passed", "wall_s", "seconds", "executor")} for k, v in runs.items()},
              "per_row_cold_s": {r["id"]: r.get("seconds") for r in runs["cold --jobs 1"]["results"]},
              "projection_s": projection}
    (args.out / "fleet.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "fleet.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(s["exit"] == 0 for s in runs.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
