"""One fleet row, run where a worker runs it: the same `compiler.build.run` as `build`, its exit
code as the CLI would give it, and a short latency measurement of a passed engine (JUnit's
p50 property). Also the deferred device step (TensorRT engine build, Core ML prediction) as
`build --from-artifact` runs it, on the node that offers the device.
"""

from __future__ import annotations

import io
import os
import platform
import tarfile
import time
import traceback
from pathlib import Path
from typing import Any

from compiler.errors import CompilerError, resource_error
from compiler.fleet.spec import Row

BENCH_ITERS = 20


def worker_setup() -> None:
    """A fresh worker process: one thread per build, signals end a build cleanly."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import threading

    if threading.current_thread() is threading.main_thread():
        from compiler import interrupts

        interrupts.install()


def build_row(row: Row, out: Path, cache_dir: str | None, use_cache: bool) -> dict[str, Any]:
    """Build `row` into `out` (installed there under `build`'s rules) → its result record."""
    from compiler import build
    from compiler.progress import Progress

    t0 = time.perf_counter()
    rec: dict[str, Any] = {"id": row.id, "model": row.name, "target": row.target, "precision": row.precision,
                           "out": str(out), "node": platform.node(), "p50_ms": None, "cache": {}, "deferred": []}
    try:
        opts = build.BuildOptions(precision=row.precision, out=out, golden_dir=Path(row.golden) if row.golden else None,
                                  calib=row.calib, cache_dir=Path(cache_dir) if cache_dir else None, use_cache=use_cache)
        r = build.run(row.model, row.target, opts, Progress(quiet=True))
        rec.update(code=0 if r.passed else 1, status=r.manifest.get("status", "failed"), cache=r.cache,
                   out=str(r.out_dir), precision_built=r.manifest.get("precision"),
                   deferred=[d["step"] for d in r.manifest.get("deferred", [])])
        if not r.passed:
            rec["message"] = r.failure or "; ".join(r.parity.failures() if r.parity else ["parity failed"])
        else:
            rec["p50_ms"] = _p50(r)
    except KeyboardInterrupt:
        raise
    except CompilerError as e:
        rec.update(code=e.exit_code, status="error", message=str(e))
    except Exception as e:  # noqa: BLE001 - reported as the row's result; the other rows go on
        full = resource_error(e)
        rec.update(code=full.exit_code if full else 4, status="error",
                   message=str(full) if full else f"internal error: {type(e).__name__}: {e}\n{traceback.format_exc()}")
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


def _p50(result: Any) -> float | None:
    """p50 latency of the installed engine at batch 1 (or its static shapes), where it runs here."""
    best = result.manifest.get("best")
    if best and best.get("chosen"):
        return next((c.get("p50_ms") for c in best["candidates"] if c["precision"] == best["chosen"]), None)
    if result.manifest.get("verified_with") != "engine":
        return None
    from compiler.bench import bench_many
    from compiler.build.best import bench_batch

    batch, _ = bench_batch(result.manifest)
    try:
        return round(bench_many([result.out_dir], [batch], iters=BENCH_ITERS, warmup=3)[0]["latency_ms"]["p50"], 4)
    except CompilerError:
        return None


def pack(directory: Path) -> bytes:
    """An artifact directory as tar bytes (what travels through Ray's object store)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(directory.rglob("*")):
            tar.add(p, arcname=p.relative_to(directory).as_posix(), recursive=False)
    return buf.getvalue()


def unpack(data: bytes, directory: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(directory, filter="data")  # no absolute paths, no links out, no devices


def build_row_packed(row: Row, cache_dir: str | None, use_cache: bool) -> tuple[dict[str, Any], bytes | None]:
    """A Ray task: build into this node's scratch, return the record and the artifact's bytes
    (the driver installs it)."""
    import tempfile

    worker_setup()
    with tempfile.TemporaryDirectory(prefix="fleet-row-") as d:
        rec = build_row(row, Path(d) / "artifact", cache_dir, use_cache)
        out = Path(rec["out"])
        return rec, pack(out) if out.is_dir() else None


def device_step(data: bytes, target: str, resource: str) -> tuple[dict[str, Any], bytes | None]:
    """A Ray task on the node that offers `resource`: finish the deferred engine build and verify
    it (`build --from-artifact`). A node without the toolchain is an outcome, recorded."""
    import tempfile

    from compiler.build.from_artifact import build_from_artifact
    from compiler.progress import Progress

    worker_setup()
    rec: dict[str, Any] = {"resource": resource, "node": platform.node(), "step": "engine-build + engine-verify"}
    try:
        import ray

        rec["node_id"] = ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray (tests call it directly)
        pass
    with tempfile.TemporaryDirectory(prefix="fleet-device-") as d:
        art = Path(d) / "artifact"
        art.mkdir()
        unpack(data, art)
        try:
            r = build_from_artifact(art, target, Progress(quiet=True))
            rec.update(code=0 if r.passed else 1, outcome="passed" if r.passed else "failed",
                       message="" if r.passed else "; ".join(r.parity.failures()))
            return rec, pack(r.out_dir)
        except CompilerError as e:
            rec.update(code=e.exit_code, outcome={3: "toolchain missing"}.get(e.exit_code, "refused"), message=str(e))
            return rec, None
