"""Latency benchmark of built artifacts: warm-up, then p50/p95/p99 and throughput.

Inputs are each artifact's real golden inputs, repeated or cut along the batch axis to the
requested batch size. Several artifacts are measured in one run with their iterations
interleaved (A, B, A, B, …) so that the noise of a shared machine falls on all of them alike;
ratios are against the first artifact. Never assert these numbers in tests.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from compiler.artifact.read import artifact_golden, load_artifact, read_manifest
from compiler.errors import BadInput

MAX_FEED_BYTES = 4 << 30  # a batch whose inputs alone exceed this is refused, not attempted
CONFIDENCE = 0.95  # of the interval reported around each median


def median_interval(samples_ms: np.ndarray, confidence: float = CONFIDENCE, resamples: int = 2000) -> tuple[float, float]:
    """A bootstrap percentile interval of the median (fixed seed: the same samples give the same
    interval). Written here: numpy has no bootstrap, and scipy.stats.bootstrap would add scipy to
    the runtime for four lines."""
    x = np.asarray(samples_ms, dtype=np.float64)
    idx = np.random.default_rng(0).integers(0, len(x), (resamples, len(x)))
    medians = np.median(x[idx], axis=1)
    tail = (1.0 - confidence) / 2 * 100
    return float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


def at_batch(a: np.ndarray, batch: int | None) -> np.ndarray:
    """`a` repeated or cut along axis 0 to `batch` rows (None: as it is)."""
    if batch is None:
        return a
    reps = -(-batch // a.shape[0])
    return np.ascontiguousarray(np.concatenate([a] * reps, axis=0)[:batch])


def bench(artifact: Path, batch: int = 1, iters: int = 50, warmup: int = 5, threads: int = 1) -> dict[str, Any]:
    return bench_many([artifact], [batch], iters, warmup, threads)[0]


def bench_many(artifacts: list[Path], batches: list[int | None], iters: int = 50, warmup: int = 5,
               threads: int = 1) -> list[dict[str, Any]]:
    """Batch None: the golden inputs as they are (an engine with static shapes)."""
    if any(b is not None and b < 1 for b in batches) or iters < 1 or warmup < 0:
        raise BadInput(f"bench needs batch ≥ 1, iters ≥ 1, warmup ≥ 0 (got {batches}, {iters}, {warmup}).")
    loaded = []
    for a in artifacts:
        manifest = read_manifest(a)
        golden = artifact_golden(a, manifest)
        per_sample = sum(v.nbytes // max(1, v.shape[0] if v.ndim else 1) for v in golden.inputs.values())
        largest = max(b or 1 for b in batches)
        if per_sample * largest > MAX_FEED_BYTES:
            raise BadInput(f"--batch {largest} needs {per_sample * largest / 2**30:.1f} GiB of inputs for "
                           f"{str(a)!r} (limit {MAX_FEED_BYTES >> 30} GiB); use a smaller batch.")
        _, runner = load_artifact(a, threads=threads, manifest=manifest)
        loaded.append((a, manifest, runner, golden))
    results = []
    try:
        for batch in batches:
            feeds = [{k: at_batch(v, batch) for k, v in g.inputs.items()} for *_, g in loaded]
            for (a, _, runner, _), f in zip(loaded, feeds):
                try:
                    runner.run(f)
                except Exception as e:  # noqa: BLE001 - runtime-specific error types
                    at = f"batch {batch}" if batch is not None else "its golden input shapes"
                    raise BadInput(f"the engine in {str(a)!r} does not run at {at}: {str(e).splitlines()[0]}") from None
                for _ in range(warmup):
                    runner.run(f)
            times: list[list[float]] = [[] for _ in loaded]
            for _ in range(iters):
                for i, ((_, _, runner, _), f) in enumerate(zip(loaded, feeds)):
                    t = time.perf_counter()
                    runner.run(f)
                    times[i].append(time.perf_counter() - t)
            base = None
            for (a, manifest, _, _), ts, f in zip(loaded, times, feeds):
                ms = np.asarray(ts) * 1e3
                rows = batch if batch is not None else _leading(f)
                p50 = float(np.percentile(ms, 50))
                lo, hi = median_interval(ms)
                base = base or p50
                results.append({
                    "artifact": str(a),
                    "model": manifest["model"]["name"],
                    "target": manifest["target"]["name"],
                    "backend": manifest["engine"]["backend"],
                    "precision": manifest["precision"],
                    "pipeline": manifest.get("pipeline", {}).get("name"),
                    "nodes": manifest["node_count"].get("final", manifest["node_count"]["optimized"]),
                    "batch": rows,
                    "threads": threads,
                    "warmup": warmup,
                    "iters": iters,
                    "latency_ms": {
                        "p50": p50,
                        "p50_ci95": [lo, hi],  # bootstrap interval of the median (CONFIDENCE)
                        "p95": float(np.percentile(ms, 95)),
                        "p99": float(np.percentile(ms, 99)),
                        "mean": float(ms.mean()),
                        "min": float(ms.min()),
                    },
                    "p50_ratio_to_first": p50 / base,
                    "throughput_per_s": float(rows / (ms.mean() / 1e3)),
                })
    finally:
        for _, _, runner, _ in loaded:
            runner.close()
    return results


def _leading(feeds: dict[str, np.ndarray]) -> int:
    first = next(iter(feeds.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1


def table(results: list[dict[str, Any]]) -> str:
    rows = [("artifact", "precision", "pipeline", "nodes", "batch", "p50 ms", "p50 95% interval", "p95 ms", "ratio", "items/s")]
    for r in results:
        lat = r["latency_ms"]
        lo, hi = lat["p50_ci95"]
        rows.append((r["artifact"], r["precision"], str(r["pipeline"]), str(r["nodes"]), str(r["batch"]), f"{lat['p50']:.2f}",
                     f"[{lo:.2f}, {hi:.2f}]", f"{lat['p95']:.2f}", f"{r['p50_ratio_to_first']:.2f}", f"{r['throughput_per_s']:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)
