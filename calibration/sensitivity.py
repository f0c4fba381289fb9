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
import onnxruntime as ort

from calibration import surgery

SNR_CAP = 200.0


@dataclass(frozen=True)
class NodeSensitivity:
    node: str
    op_type: str
    snr_db: float  # SNR of the model outputs with only this node quantized


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def outputs(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    sess = _session(model)
    return np.concatenate([o.astype(np.float64).ravel() for f in feeds for o in sess.run(None, f)])


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    noise = float(((got - ref) ** 2).sum())
    if noise == 0:
        return SNR_CAP
    return float(min(SNR_CAP, 10 * np.log10(max(float((ref**2).sum()), 1e-30) / noise)))


def rank(float_model: onnx.ModelProto, qdq_model: onnx.ModelProto, quantized: list[str],
         feeds: list[dict[str, np.ndarray]]) -> list[NodeSensitivity]:
    """Quantized nodes, most damaging (lowest output SNR) first."""
    ref = outputs(float_model, feeds)
    ops = {n.name: n.op_type for n in float_model.graph.node}
    out = [NodeSensitivity(n, ops[n], snr_db(ref, outputs(surgery.only(float_model, qdq_model, n), feeds))) for n in quantized]
    return sorted(out, key=lambda s: s.snr_db)
