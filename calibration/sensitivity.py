"""Per-node sensitivity: the damage each quantized node does on its own.

For every quantized node, the float model with only that node quantized (`surgery.only`) is run
on a few calibration batches, and the SNR (dB) of its outputs against the float model's is
measured. Low SNR = sensitive. One session per node, no re-quantization; the float reference
is computed once. (A first version attributed error by per-tensor SNR inside the fully
quantized model; on MiniLM it ranked the harmful FFN projections last, because errors in
padded positions and averaging inside later layers hide where damage starts.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from calibration import surgery
from compiler import ortsession
from compiler.verify import snr_db


@dataclass(frozen=True)
class NodeSensitivity:
    node: str
    op_type: str
    snr_db: float  # SNR of the model outputs with only this node quantized


def outputs(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    sess = ortsession.session(model)
    return np.concatenate([o.astype(np.float64).ravel() for f in feeds for o in sess.run(None, f)])


def rank(float_model: onnx.ModelProto, qdq_model: onnx.ModelProto, quantized: list[str],
         feeds: list[dict[str, np.ndarray]]) -> list[NodeSensitivity]:
    """Quantized nodes, most damaging (lowest output SNR) first."""
    ref = outputs(float_model, feeds)
    ops = {n.name: n.op_type for n in float_model.graph.node}
    out = [NodeSensitivity(n, ops[n], snr_db(ref, outputs(surgery.only(float_model, qdq_model, n), feeds))) for n in quantized]
    return sorted(out, key=lambda s: s.snr_db)


def last(ranked: list[NodeSensitivity], op_types: tuple[str, ...]) -> list[NodeSensitivity]:
    """`ranked` with nodes of `op_types` moved behind all others (each part keeps its order), so
    the fallback returns them to float only once every other node is float and the gate still
    fails."""
    return [s for s in ranked if s.op_type not in op_types] + [s for s in ranked if s.op_type in op_types]
