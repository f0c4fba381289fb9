"""Dynamic int8 (`--precision int8-dynamic`): MatMul weights in int8 per output channel, stored;
activations quantized at run time per tensor, from each batch's own range — ONNX Runtime's
"dynamic quantization", the scheme its docs recommend for transformers on CPU and the one its
kernels run fastest there (DynamicQuantizeLinear + MatMulInteger, fused at load into
MatMulIntegerToFloat). No calibration data: nothing about activations is fixed at build time.

The quantizer is ORT's own (`quantize_dynamic`); this module chooses the MatMuls, passes the
accuracy fallback's exclusions and ranks the quantized MatMuls by the error each adds.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx

from calibration.sensitivity import NodeSensitivity
from calibration.weight_loss import loss_across

OPS = ("MatMul",)  # ORT's integer-op registry has no Gemm; Conv (ConvInteger) runs slower than float on CPU


def candidates(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """MatMuls whose input 1 is a constant 2-D float32 weight (what `MatMulConstBOnly` takes)."""
    inits = {t.name: t for t in model.graph.initializer}
    return [n for n in model.graph.node if n.op_type in OPS and n.domain in ("", "ai.onnx") and len(n.input) == 2
            and n.input[1] in inits and len(inits[n.input[1]].dims) == 2
            and inits[n.input[1]].data_type == onnx.TensorProto.FLOAT]


def quantize(model_path: Path, out: Path, exclude: list[str]) -> onnx.ModelProto:
    """`model_path` with every candidate not in `exclude` quantized dynamically, saved to `out`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()  # ORT's quantizer logs on the root logger: a line per node at INFO …
    level = quiet.level
    quiet.setLevel(max(level, logging.ERROR))  # and a WARNING to run its pre-processing (the passes did)
    try:
        # per channel, signed weights: what ORT's docs give for CPU transformers, and what the
        # by-hand flow of `make bench-versus` runs (cosine 0.991 on MiniLM's held-out sentences)
        quantize_dynamic(str(model_path), str(out), op_types_to_quantize=list(OPS), per_channel=True,
                         weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude),
                         extra_options={"MatMulConstBOnly": True})
    finally:
        quiet.setLevel(level)
    return onnx.load(str(out))


def rank(float_model: onnx.ModelProto, quantized: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> list[NodeSensitivity]:
    """Quantized MatMuls, worst first, by the SNR each loses across itself."""
    return loss_across(float_model, quantized, candidates(float_model), lambda n: n.input[0], feeds)
