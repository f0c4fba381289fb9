"""`python -m compiler matrix FLEET.toml --out DIR`: every (model, target, precision) of a fleet
file built and verified, in parallel here (`--jobs`) or on a Ray cluster (`--ray`), with
results CI reads (summary.json / .md, index.html, JUnit).

Before any row runs, each factory model without a golden set gets one (once, not once per row).
Rows are ordered longest first (durations of the last run in DIR/summary.json, else the order
of the file), so the longest row does not start last. One failing row never stops the others;
Ctrl-C / SIGTERM stops the matrix, keeps every installed row as it is, writes the summary of
what finished and exits 130 / 143.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler import golden as golden_mod
from compiler import spec as spec_mod
from compiler.errors import BadInput
from compiler.fleet import results
from compiler.fleet.progress import Display
from compiler.fleet.spec import Row, load
from compiler.profile import known_profiles
from compiler.progress import Progress


@dataclass(frozen=True)
class MatrixOptions:
    out: Path
    jobs: int | None = None  # None: the machine's cores
    ray: str | None = None  # "local" or a cluster address
    junit: Path | None = None
    cache_dir: Path | None = None
    use_cache: bool = True


def run(fleet: Path, opts: MatrixOptions, progress: Progress | None = None) -> dict[str, Any]:
    progress = progress or Progress()
    rows = load(fleet, known_profiles())
    jobs = opts.jobs or os.cpu_count() or 1
    if jobs < 1:
        raise BadInput(f"--jobs must be ≥ 1, got {jobs}.")
    opts.out.mkdir(parents=True, exist_ok=True)
    rows = _longest_first(rows, opts.out)
    _golden_sets(rows, progress)
    cache = str(opts.cache_dir) if opts.cache_dir else None
    executor = f"ray {opts.ray}" if opts.ray else f"local process pool, {jobs} job(s)"
    done: dict[str, dict[str, Any]] = {}
    display = Display(len(rows), progress)
    t0 = time.perf_counter()

    def on_start(row: Row) -> None:
        display.started(row)

    def on_done(row: Row, rec: dict[str, Any]) -> None:
        rec.update(model=row.name, target=row.target, precision=row.precision, allow_fail=row.allow_fail, id=row.id)
        rec.setdefault("out", str(row.out(opts.out)))
        done[row.id] = rec
        display.finished(row, rec)

    interrupted = False
    ray = None
    try:
        if opts.ray:
            from compiler.fleet import cluster

            ray = cluster.connect(opts.ray, jobs)
            cluster.run(ray, rows, opts.out, cache, opts.use_cache, on_start, on_done)
            _device_steps(ray, rows, done, display)
        else:
            from compiler.fleet import local

            local.run(rows, opts.out, jobs, cache, opts.use_cache, on_start, on_done)
            _device_steps(None, rows, done, display)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        display.close()
        if ray is not None:
            ray.shutdown()
        s = results.summary(list(done.values()), time.perf_counter() - t0, executor, interrupted)
        results.write(s, opts.out, opts.junit)
    return s


# Without a previous run, a row's relative cost by what it does: a reduced precision calibrates and
# searches a fallback (int8 most), `best` builds every precision, and a gate judged in the engine
# compiles each candidate (android: LiteRT). Measured on the zoo (docs/ci.md): the one android
# int8 transformer row took half the matrix's build time.
_PRECISION_COST = {"fp32": 1.0, "fp16": 2.0, "bf16": 2.0, "int8": 4.0, "best": 8.0}


def _estimate(row: Row) -> float:
    from targets import load_profile

    try:
        engine_gate = load_profile(row.target).option("precision_gate") == "engine"
    except Exception:  # noqa: BLE001 - a profile the row itself will report on
        engine_gate = False
    return _PRECISION_COST.get(row.precision, 1.0) * (3.0 if engine_gate and row.precision != "fp32" else 1.0)


def _longest_first(rows: list[Row], out: Path) -> list[Row]:
    """Longest first, so the longest row does not start last: by the durations of the last run
    (DIR/summary.json) where there is one, else by `_estimate`; the file's order breaks ties."""
    previous = {}
    try:
        previous = {r["id"]: r.get("seconds") or 0 for r in json.loads((out / "summary.json").read_text())["results"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    order = {r.id: i for i, r in enumerate(rows)}
    if previous:
        return sorted(rows, key=lambda r: (-previous.get(r.id, 0), order[r.id]))
    return sorted(rows, key=lambda r: (-_estimate(r), order[r.id]))


def _golden_sets(rows: list[Row], progress: Progress) -> None:
    """A golden set for every model that needs one and has none, once per model."""
    seen = set()
    for row in rows:
        if row.golden or row.model in seen:
            continue
        seen.add(row.model)
        spec = spec_mod.resolve(row.model)
        directory = golden_mod.GOLDEN_ROOT / spec.name
        if not directory.is_dir() and spec.source_kind is not spec_mod.SourceKind.ONNX:
            with progress.step(f"golden: {spec.name} (for its rows)"):
                golden_mod.generate(spec, directory, log=progress.info)


def _device_steps(ray: Any, rows: list[Row], done: dict[str, dict[str, Any]], display: Display) -> None:
    """Each passed row with deferred steps whose target names a device resource: run them on a
    node that offers it, or say that none does (`ray` None: the local executor has no nodes)."""
    from compiler.fleet import cluster
    from targets import load_profile

    for row in rows:
        rec = done.get(row.id)
        if rec is None or rec.get("code") != 0 or not rec.get("deferred"):
            continue
        resource = load_profile(row.target).device.resource
        if not resource:
            rec["device_note"] = f"deferred: target {row.target!r} names no device resource (steps in its manifest)"
        elif ray is None:
            rec["device_note"] = f"deferred: run the matrix with --ray on a cluster with a node offering {resource}"
        elif not cluster.offers(ray, resource):
            rec["device_note"] = f"deferred: no node offers {resource}"
        else:
            display.note(f"{row.id}: device step on a node offering {resource}")
            step = cluster.run_device_step(ray, Path(rec["out"]), row.target, resource)
            rec["device_step"] = step
            rec["device_note"] = f"device step on {step.get('node')}: {step.get('outcome')}"
