"""Latency benchmark of a built artifact: warm-up, then p50/p95/p99 and throughput.

Inputs are the artifact's real golden inputs, repeated or cut along the batch axis to the
requested batch size. Numbers from a shared 2-core machine are noisy: compare medians from one
run, never assert them in tests.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from compiler.errors import BadInput
from compiler.golden import Golden
from compiler.pipeline import load_artifact


def at_batch(a: np.ndarray, batch: int) -> np.ndarray:
    reps = -(-batch // a.shape[0])
    return np.ascontiguousarray(np.concatenate([a] * reps, axis=0)[:batch])


def bench(artifact: Path, batch: int = 1, iters: int = 50, warmup: int = 5, threads: int = 1) -> dict[str, Any]:
    if batch < 1 or iters < 1 or warmup < 0:
        raise BadInput(f"bench needs batch ≥ 1, iters ≥ 1, warmup ≥ 0 (got {batch}, {iters}, {warmup}).")
    manifest, runner = load_artifact(artifact, threads=threads)
    golden = Golden.load(Path(manifest["golden"]["dir"]))
    feeds = {k: at_batch(v, batch) for k, v in golden.inputs.items()}
    with runner:
        try:
            runner.run(feeds)
        except Exception as e:  # noqa: BLE001 - runtime-specific error types
            raise BadInput(f"the engine in {str(artifact)!r} does not run at batch {batch}: {str(e).splitlines()[0]}") from None
        for _ in range(warmup):
            runner.run(feeds)
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            runner.run(feeds)
            times.append(time.perf_counter() - t)
    ms = np.asarray(times) * 1e3
    return {
        "artifact": str(artifact),
        "model": manifest["model"]["name"],
        "target": manifest["target"]["name"],
        "backend": manifest["engine"]["backend"],
        "precision": manifest["precision"],
        "batch": batch,
        "threads": threads,
        "warmup": warmup,
        "iters": iters,
        "latency_ms": {
            "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean()),
            "min": float(ms.min()),
        },
        "throughput_per_s": float(batch / (ms.mean() / 1e3)),
    }
