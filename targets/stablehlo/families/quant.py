"""QuantizeLinear / DequantizeLinear from our calibrated QDQ model → the converter's Q/DQ form.

The converter reads Q/DQ as ``stablehlo.custom_call @odml_torch.uniform_quantize`` (its quantized
result type in ``backend_config``) and ``@odml_torch.uniform_dequantize``, the convention
litert-torch uses, and with ``qdq_conversion_mode="STATIC"`` folds them into integer kernels —
with our scales and zero points, not ones it computes.

- A quantized activation is an f32-typed value in the MLIR that carries its quant type (`Val.quant`).
- A quantized constant (weights) is emitted as its exact dequantized float values followed by
  Q/DQ with the same parameters, which the converter folds back to the same integers.
- An int32 bias (DequantizeLinear of a constant int32) becomes its float value: the converter
  quantizes biases itself (scale = input scale × weight scale, the TFLite spec).
"""

from __future__ import annotations

import numpy as np

from targets.stablehlo.emit import Emitter, Val, lowering, unsupported

STORAGE = {"i8": ("i8", -128, 127), "ui8": ("u8", 0, 255), "i16": ("i16", -32768, 32767)}


def _params(node, scale: Val, zp: Val | None) -> tuple[np.ndarray, np.ndarray]:
    if scale.const is None or (zp is not None and zp.const is None):
        raise unsupported(node, "scales or zero points computed at run time")
    s = scale.const.astype(np.float32).ravel()
    z = zp.const.astype(np.int64).ravel() if zp is not None else np.zeros_like(s, np.int64)
    if not np.all(np.isfinite(s)) or (s < 0).any():
        raise unsupported(node, f"a scale of {s[~np.isfinite(s) | (s < 0)][0]}")
    return s, z


def quant_type(shape_text: str, storage: str, s: np.ndarray, z: np.ndarray, axis: int | None) -> str:
    st, lo, hi = STORAGE[storage]
    # ORT's quantizer gives an all-zero tensor (a mask's zero branch) scale 0, which the converter
    # refuses ("scale out of expressed type range"); its every value is the zero point, exact at 1
    s = np.where(s == 0, np.float32(1.0), s)
    if axis is None:
        return f"tensor<{shape_text}!quant.uniform<{st}<{lo}:{hi}>:f32, {float(s[0])!r}:{int(z[0])}>>"
    pairs = ", ".join(f"{float(a)!r}:{int(b)}" for a, b in zip(s, z))
    return f"tensor<{shape_text}!quant.uniform<{st}<{lo}:{hi}>:f32:{axis}, {{{pairs}}}>>"


def _shape_text(v: Val) -> str:
    return "".join(("?" if d is None else str(d)) + "x" for d in v.type.shape)


def _q(e: Emitter, x: Val, qtype: str, storage: str) -> Val:
    out = e.op("stablehlo.custom_call", [x], x.type,
               f'call_target_name = "odml_torch.uniform_quantize", backend_config = "{qtype}"')
    return Val(out.name, out.type, None, quant=(qtype, storage))


def _dq(e: Emitter, q: Val) -> Val:
    return e.op("stablehlo.custom_call", [q], q.type, 'call_target_name = "odml_torch.uniform_dequantize"')


def _axis(node, x: Val, s: np.ndarray) -> int | None:
    if s.size == 1:
        return None
    if node.attributes.get_int("block_size", 0):
        raise unsupported(node, "blocked quantization")
    return node.attributes.get_int("axis", 1) % x.type.rank


@lowering("QuantizeLinear", since=10)
def quantize(e: Emitter, node, ins, outs):
    x, scale = ins[0], ins[1]
    zp = ins[2] if len(ins) > 2 else None
    if x.type.dtype != "f32":  # the converter's Q/DQ convention is f32 on the float side
        raise unsupported(node, f"quantizing a {x.type.dtype} tensor")
    storage = outs[0].dtype
    if storage not in STORAGE:
        raise unsupported(node, f"quantizing to {storage}")
    s, z = _params(node, scale, zp)
    return _q(e, x, quant_type(_shape_text(x), storage, s, z, _axis(node, x, s)), storage)


@lowering("DequantizeLinear", since=10)
def dequantize(e: Emitter, node, ins, outs):
    q, scale = ins[0], ins[1]
    zp = ins[2] if len(ins) > 2 else None
    if outs[0] is not None and outs[0].dtype != "f32":
        raise unsupported(node, f"dequantizing to {outs[0].dtype}")
    s, z = _params(node, scale, zp)
    axis = _axis(node, q, s)
    if q.quant is not None:
        qtype, storage = q.quant
        if quant_type(_shape_text(q), storage, s, z, axis) != qtype:
            raise unsupported(node, "a DequantizeLinear whose scale/zero point differ from its QuantizeLinear's")
        return _dq(e, q)
    if q.const is None:
        raise unsupported(node, f"dequantizing a {q.type.dtype} tensor that no QuantizeLinear produced")
    shape = [1] * q.type.rank
    if axis is not None:
        shape[axis] = -1
    real = ((q.const.astype(np.int64) - z.reshape(shape)) * s.reshape(shape).astype(np.float64)).astype(np.float32)
    value = e.const(real, "f32")
    if q.type.dtype not in STORAGE:
        return value  # an int32 bias: the converter quantizes biases itself
    return _dq(e, _q(e, value, quant_type(_shape_text(value), q.type.dtype, s, z, axis), q.type.dtype))
