"""The measurements of `make bench-versus`: accuracy of a flow on the held-out set against eager
fp32 (top-1 agreement, or min cosine per group), and the interleaved timing run — every flow once
per round in a shuffled order, each sample a block of back-to-back calls, p25 / p50 / p75 per
flow and batch.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from compiler.bench import at_batch
from compiler.verify import cosine
from compiler.versus.flows import Flow
from compiler.versus.heldout import HeldOut


def accuracy(held: HeldOut, flow: Flow, reference: dict[str, list[list[np.ndarray]]]) -> dict[str, Any]:
    got = {g: [flow.run(f) for f in feeds] for g, feeds in held.groups.items()}
    if held.kind == "classifier":
        agree = total = 0
        for g in held.groups:
            for ref, out in zip(reference[g], got[g]):
                agree += int(np.argmax(ref[0]) == np.argmax(out[0]))
                total += 1
        return {"agree": agree, "total": total, "score": agree / total, "text": f"{agree}/{total}"}
    per = {g: min(cosine(ref[0], out[0]) for ref, out in zip(reference[g], got[g])) for g in held.groups}
    worst = min(per.values())
    return {"min_cosine": per, "score": worst, "text": f"{worst:.4f} (" + ", ".join(f"{g}: {c:.4f}" for g, c in per.items()) + ")"}


# A timing sample is a block of back-to-back calls of one flow lasting about this long: a 0.1 ms
# call timed alone measures the cache state the previous (other) flow left behind, and 20 such
# samples moved digits-cnn's p50 by ±15 % between runs; blocks keep the interleaving and give
# steady-state latency, what a caller that runs the model repeatedly sees.
BLOCK_MS = 5.0


def repeats_for(seconds_per_call: float, block_ms: float = BLOCK_MS) -> int:
    return max(1, min(1000, round(block_ms / 1e3 / max(seconds_per_call, 1e-7))))


def time_flows(flows: list[Flow], timing: dict[str, np.ndarray], batches: list[int], iters: int, warmup: int,
               block_ms: float = BLOCK_MS) -> dict[str, dict[int, dict[str, float]]]:
    """Per flow and batch: p25 / p50 / p75 ms of `iters` interleaved samples (flow order shuffled
    per round with a fixed seed, so no flow always follows the same one), and the calls per sample."""
    rng = np.random.default_rng(0)
    out: dict[str, dict[int, dict[str, float]]] = {f.name: {} for f in flows}
    for batch in batches:
        feeds = {k: at_batch(v, batch) for k, v in timing.items()}
        repeats = {}
        for f in flows:
            spent = []
            for _ in range(max(warmup, 1)):
                t = time.perf_counter()
                f.run(feeds)
                spent.append(time.perf_counter() - t)
            repeats[f.name] = repeats_for(float(np.median(spent)), block_ms)
        times: dict[str, list[float]] = {f.name: [] for f in flows}
        for _ in range(iters):
            for i in rng.permutation(len(flows)):
                f, k = flows[i], repeats[flows[i].name]
                t = time.perf_counter()
                for _ in range(k):
                    f.run(feeds)
                times[f.name].append((time.perf_counter() - t) / k)
        for name, ts in times.items():
            q25, q50, q75 = np.percentile(np.asarray(ts) * 1e3, [25, 50, 75])
            out[name][batch] = {"p25": float(q25), "p50": float(q50), "p75": float(q75), "calls_per_sample": repeats[name]}
    return out
