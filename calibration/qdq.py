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

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.calibrate import CalibrationMethod, save_tensors_data

from calibration.ranges import Ranges, activation_bounds
from calibration.surgery import consumers, producers
from compiler.profile import QuantScheme

_QTYPE = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}


# TFLite's 8-bit quantization spec: the output parameters its integer kernels require, by the op
# that produces the tensor (int8 storage): (scale, zero point)
FIXED_OUTPUT_PARAMS = {"Softmax": (1 / 256, -128), "Sigmoid": (1 / 256, -128), "Tanh": (1 / 128, 0),
                       "LogSoftmax": (16 / 256, 127)}


LAYOUT = ("Cast", "Identity", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten")


def _through_layout(prod: dict, inits: dict, tensor: str):
    """The node that computes `tensor`'s values, looking through ops that only move or relabel
    them, and through a Where whose other branch is a constant (attention's masked rows set to
    0): what the converter fuses into the quantized kernel."""
    node = prod.get(tensor)
    for _ in range(16):
        if node is None:
            return None
        if node.op_type in LAYOUT:
            node = prod.get(node.input[0])
        elif node.op_type == "Where":
            computed = [i for i in node.input[1:] if i not in inits and (prod.get(i) is None or prod[i].op_type != "Constant")]
            if len(computed) != 1:
                return node
            node = prod.get(computed[0])
        else:
            return node
    return node


def fix_output_params(model: onnx.ModelProto) -> list[str]:
    """Give each int8 QuantizeLinear of a Softmax/Sigmoid/Tanh/LogSoftmax output, and the
    DequantizeLinear nodes reading it, the fixed parameters; returns the tensors changed. The
    calibrated range of a softmax (0 … 0.2 in an attention layer) gives a finer scale that
    LiteRT's SOFTMAX kernel refuses."""
    inits = {i.name: i for i in model.graph.initializer}
    prod, cons = producers(model), consumers(model)
    changed = []
    for q in model.graph.node:
        src = _through_layout(prod, inits, q.input[0]) if q.op_type == "QuantizeLinear" else None
        if src is None or src.op_type not in FIXED_OUTPUT_PARAMS or len(q.input) < 3:
            continue
        zp = inits.get(q.input[2])
        if zp is None or zp.data_type != onnx.TensorProto.INT8:
            continue
        scale, zero = FIXED_OUTPUT_PARAMS[src.op_type]
        for node in [q, *(d for d in cons.get(q.output[0], []) if d.op_type == "DequantizeLinear")]:
            s_init, z_init = inits.get(node.input[1]), inits.get(node.input[2]) if len(node.input) > 2 else None
            if s_init is None or z_init is None:
                continue
            s_init.CopyFrom(numpy_helper.from_array(np.array(scale, np.float32).reshape(numpy_helper.to_array(s_init).shape), s_init.name))
            z_init.CopyFrom(numpy_helper.from_array(np.array(zero, np.int8).reshape(numpy_helper.to_array(z_init).shape), z_init.name))
        changed.append(q.input[0])
    return changed


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
    model = onnx.load(str(out_path))
    if scheme.fixed_output_params and fix_output_params(model):
        onnx.save(model, str(out_path))
    return model


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


_QRANGE = {onnx.TensorProto.UINT8: (0, 255), onnx.TensorProto.INT8: (-128, 127)}


def drop_identity_activations(model: onnx.ModelProto) -> list[str]:
    """Remove each Relu / Clip whose input is a DequantizeLinear output that its bounds cannot
    change: every value ``(q - zero_point) * scale`` of the integer type lies inside them (u8
    with zero point 0 under a Relu; ReLU6 after a range folded to [0, 6]). Exact, so no gate
    is re-run. ORT fuses such an activation only when a QuantizeLinear follows it; before a
    float consumer (the ReLU feeding global pooling) it ran as a separate pass over the tensor.
    Edits `model` in place; returns the removed nodes' names."""

    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    made, readers = producers(model), consumers(model)
    outputs = {o.name for o in model.graph.output}
    dropped = []
    for n in list(model.graph.node):
        dq = made.get(n.input[0]) if n.op_type in ("Relu", "Clip") and n.input else None
        if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 3 or n.output[0] in outputs:
            continue
        scale, zp = consts.get(dq.input[1]), consts.get(dq.input[2])
        bounds = activation_bounds(n, consts)
        if scale is None or zp is None or scale.size != 1 or zp.size != 1 or bounds is None or zp.dtype.itemsize != 1:
            continue
        qmin, qmax = _QRANGE[onnx.TensorProto.UINT8 if zp.dtype == np.uint8 else onnx.TensorProto.INT8]
        s, z = np.float32(scale.item()), np.float32(zp.item())
        lo, hi = (np.float32(qmin) - z) * s, (np.float32(qmax) - z) * s  # as the runtime computes it, in float32
        if any(r.op_type == "QuantizeLinear" for r in readers.get(n.output[0], [])) or not (bounds[0] <= lo and hi <= bounds[1]):
            continue
        for r in readers.get(n.output[0], []):
            r.input[:] = [n.input[0] if i == n.output[0] else i for i in r.input]
        model.graph.node.remove(n)
        dropped.append(n.name)
    return dropped


def float_readers_read_float(model: onnx.ModelProto, quantized: set[str]) -> list[str]:
    """Where ORT's quantizer gave every reader of a quantized tensor its dequantized copy, the
    readers that compute in float (not in `quantized`) read the float tensor again when a float
    node produced it. MiniLM: a LayerNorm output is quantized for the Q/K/V MatMuls, and the
    residual Add then carried the int8-rounded stream through all six layers — with all 48
    MatMuls back in float the model still reached only cos 0.985 on the validation sentences.
    A tensor a quantized node writes (a Conv output feeding a residual Add) keeps its DQ for
    every reader: at run time it is int8 anyway (QLinearConv), and a float reader would cost
    ORT that fusion. Edits `model` in place; returns the rewired tensors."""
    made, readers = producers(model), consumers(model)
    changed = []
    for dq in model.graph.node:
        q = made.get(dq.input[0]) if dq.op_type == "DequantizeLinear" else None
        if q is None or q.op_type != "QuantizeLinear":
            continue
        x = q.input[0]
        producer = made.get(x)
        if producer is None or producer.name in quantized or producer.op_type in ("DequantizeLinear", "QuantizeLinear"):
            continue  # a graph input, a quantized node's output, or a requantization
        floats = [n for n in readers.get(dq.output[0], [])
                  if n.name not in quantized and n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
        for n in floats:
            n.input[:] = [x if i == dq.output[0] else i for i in n.input]
        if floats:
            changed.append(x)
    return changed
