"""Per-node sensitivity: the damage each quantized node does on its own.

For every quantized node, the float model with only that node quantized (`surgery.only`) is run
on a few calibration batches, and the SNR (dB) of its outputs against the float model's is
measured. Low SNR = sensitive. One session per node, no re-quantization; the float reference
is computed once. (A first version attributed error by per-tensor SNR inside the fully
quantized model; on MiniLM it ranked the harmful FFN projections last, because errors in
padded positions and averaging inside later layers hide where damage starts.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from calibration import surgery
from compiler import ortsession
from compiler.verify import SNR_CAP_DB, snr_db


@dataclass(frozen=True)
class NodeSensitivity:
    node: str
    op_type: str
    snr_db: float  # SNR of the model outputs with only this node quantized


def outputs(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    sess = ortsession.session(model)
    return np.concatenate([o.astype(np.float64).ravel() for f in feeds for o in sess.run(None, f)])


PROGRESS_SECONDS = 10.0  # a progress line at most this often while nodes are measured


def rank(float_model: onnx.ModelProto, qdq_model: onnx.ModelProto, quantized: list[str],
         feeds: list[dict[str, np.ndarray]], log: Callable[[str], None] = lambda s: None) -> list[NodeSensitivity]:
    """Quantized nodes, most damaging (lowest output SNR) first. A node whose one-node probe ONNX
    Runtime refuses to load or run ranks as the most damaging (it is the first back to float)."""
    from compiler.errors import first_line, is_toolchain_exception

    ref = outputs(float_model, feeds)
    ops = {n.name: n.op_type for n in float_model.graph.node}
    out = []
    t0 = last_line = time.perf_counter()
    for i, n in enumerate(quantized):
        try:
            snr = snr_db(ref, outputs(surgery.only(float_model, qdq_model, n), feeds))
        except Exception as e:  # noqa: BLE001 - ORT refusing the probe ranks the node, our bugs re-raise
            if not is_toolchain_exception(e):
                raise
            log(f"sensitivity: {n} ({ops[n]}) quantized alone is refused by ONNX Runtime ({first_line(e)[:160]}); "
                "it ranks first to return to float")
            snr = -SNR_CAP_DB
        out.append(NodeSensitivity(n, ops[n], snr))
        now = time.perf_counter()
        if now - last_line >= PROGRESS_SECONDS and i + 1 < len(quantized):
            last_line = now
            left = (now - t0) / (i + 1) * (len(quantized) - i - 1)
            log(f"sensitivity: {i + 1} of {len(quantized)} quantized nodes measured, about {left:.0f} s left")
    return sorted(out, key=lambda s: s.snr_db)


def last(ranked: list[NodeSensitivity], op_types: tuple[str, ...]) -> list[NodeSensitivity]:
    """`ranked` with nodes of `op_types` moved behind all others (each part keeps its order), so
    the fallback returns them to float only once every other node is float and the gate still
    fails."""
    return [s for s in ranked if s.op_type not in op_types] + [s for s in ranked if s.op_type in op_types]
