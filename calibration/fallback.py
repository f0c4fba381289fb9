"""Accuracy-driven fallback: return the most damaging quantized nodes to float until the gate
(the golden tolerance, or the labelled evaluation set's metric) holds.

Nodes are ranked once by local sensitivity (`sensitivity.rank`); then k = 1, 2, 4, … of the
worst are excluded until the gate passes, and k is bisected down between the last failure
and the first pass. That is O(log n) quantize-and-evaluate rounds — a small multiple of one
calibration pass — instead of one round per node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from calibration.sensitivity import NodeSensitivity


@dataclass
class Gate:
    passed: bool
    failures: list[str] = field(default_factory=list)
    summary: str = ""


@dataclass
class FallbackResult:
    model_path: Path
    excluded: list[NodeSensitivity]
    rounds: list[dict]
    passed: bool


def search(
    ranked: list[NodeSensitivity],
    build: Callable[[list[str], Path], onnx.ModelProto],
    gate: Callable[[Path], Gate],
    work: Path,
    log: Callable[[str], None] = lambda s: None,
) -> FallbackResult:
    """`build(excluded_node_names, out_path)` quantizes; `gate(path)` evaluates."""
    rounds: list[dict] = []
    results: dict[int, tuple[Path, Gate]] = {}

    def attempt(k: int) -> Gate:
        if k not in results:
            path = work / f"int8_fallback_{k}.onnx"
            build([s.node for s in ranked[:k]], path)
            g = gate(path)
            results[k] = (path, g)
            rounds.append({"float_nodes": k, "passed": g.passed, "summary": g.summary})
            log(f"fallback: {k} node(s) in float → {'pass' if g.passed else 'fail'} ({g.summary})")
        return results[k][1]

    lo, hi = 0, None  # lo: largest k known to fail; hi: smallest k known to pass
    if attempt(0).passed:
        hi = 0
    else:
        k = 1
        while k < len(ranked):
            if attempt(k).passed:
                hi = k
                break
            lo, k = k, k * 2
        if hi is None:
            if attempt(len(ranked)).passed:
                hi = len(ranked)
            else:
                return FallbackResult(results[len(ranked)][0], ranked, rounds, False)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if attempt(mid).passed:
                hi = mid
            else:
                lo = mid
    return FallbackResult(results[hi][0], ranked[:hi], rounds, True)
