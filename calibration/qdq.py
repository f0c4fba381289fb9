"""QDQ insertion with ONNX Runtime's quantizer, driven by our ranges and the target's preset.

`quantize_static` is given a calibration cache holding the ranges we computed (so it does not
calibrate again) and the preset's types, symmetry, granularity and op types; nodes named in
`exclude` stay float (accuracy-driven fallback).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.calibrate import CalibrationMethod, save_tensors_data

from calibration.ranges import Ranges
from compiler.profile import QuantScheme

_QTYPE = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}


def quantize(model_path: Path, out_path: Path, ranges: Ranges, scheme: QuantScheme, exclude: Sequence[str] = ()) -> onnx.ModelProto:
    extra = {
        "ActivationSymmetric": scheme.activation_symmetric,
        "WeightSymmetric": scheme.weight_symmetric,
        **dict(scheme.extra),
    }
    with tempfile.TemporaryDirectory(prefix="qdq-") as tmp:
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(ranges.data, cache)
        logger = logging.getLogger()
        level = logger.level
        logger.setLevel(logging.ERROR)  # "Please consider to run pre-processing" on every call
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                quantize_static(
                    str(model_path), str(out_path), None,
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(scheme.op_types) or None,
                    per_channel=scheme.per_channel,
                    activation_type=_QTYPE[scheme.activation_type],
                    weight_type=_QTYPE[scheme.weight_type],
                    nodes_to_exclude=list(exclude),
                    calibrate_method=ranges.data.calibration_method if ranges.method != "mse" else CalibrationMethod.MinMax,
                    extra_options=extra,
                    calibration_cache_path=cache,
                )
        finally:
            logger.setLevel(level)
    return onnx.load(str(out_path))


def quantized_nodes(model: onnx.ModelProto, float_model: onnx.ModelProto, op_types: Sequence[str]) -> list[str]:
    """Float-graph nodes of the quantized op types that read dequantized inputs in the QDQ
    model (consumers of a requantized output, e.g. a LayerNorm after a quantized MatMul, are
    not quantized nodes: they compute in float)."""
    dq_outputs = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    names = {n.name for n in float_model.graph.node}
    return [
        n.name for n in model.graph.node
        if n.name in names and (not op_types or n.op_type in op_types) and any(i in dq_outputs for i in n.input)
    ]
