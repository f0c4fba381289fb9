"""The ranking of the weight quantizers' fallback (int4, int8-dynamic): how much SNR each
replaced node loses across itself, measured on the float and the quantized model's exposed
tensors. Their graphs replace a node with several (MatMulNBits; DynamicQuantizeLinear +
MatMulInteger), so `sensitivity.rank`'s one-node surgery cannot take them apart."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

from calibration.fp16 import run_exposed
from calibration.sensitivity import NodeSensitivity
from compiler.verify import SNR_CAP_DB, snr_db


def loss_across(float_model: onnx.ModelProto, reduced: onnx.ModelProto, nodes: list[onnx.NodeProto],
                activation: Callable[[onnx.NodeProto], str], feeds: list[dict[str, np.ndarray]]) -> list[NodeSensitivity]:
    """Nodes of `float_model` that a weight quantizer replaced in `reduced` (their name is gone;
    their output tensor stays), worst first: minus the SNR (dB) each loses between its data input
    and its output against the float model on `feeds` — the fp16 ranking's measure, for the
    weight-only quantizers (int4, dynamic int8) whose graphs `surgery.only` cannot take apart."""
    kept = {n.name for n in reduced.graph.node}
    nodes = [n for n in nodes if n.name not in kept]
    names = {t for n in nodes for t in (activation(n), n.output[0])}
    ref, got = run_exposed(float_model, names, feeds), run_exposed(reduced, names, feeds)

    def snr(t: str) -> float:
        if t not in ref or t not in got or ref[t].shape != got[t].shape:
            return SNR_CAP_DB
        return snr_db(ref[t], got[t])

    ranked = [NodeSensitivity(n.name, n.op_type, -round(max(snr(activation(n)) - snr(n.output[0]), 0.0), 3)) for n in nodes]
    return sorted(ranked, key=lambda s: s.snr_db)

