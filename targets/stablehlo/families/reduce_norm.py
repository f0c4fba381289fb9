"""Reductions (ReduceMean/Sum/Max/Min/Prod/L2/SumSquare), Softmax / LogSoftmax and
LayerNormalization.

LayerNormalization is written as mean / variance / rsqrt: TFLite has no builtin layer norm, and
XNNPACK runs the resulting MEAN / SQUARED_DIFFERENCE / RSQRT sequence.
"""

from __future__ import annotations

import numpy as np

from targets import onnx_attrs
from targets.stablehlo.emit import FLOATS, Emitter, T, Val, lowering, unsupported

_BODY = {"ReduceSum": ("add", 0.0), "ReduceMean": ("add", 0.0), "ReduceMax": ("maximum", -np.inf),
         "ReduceMin": ("minimum", np.inf), "ReduceProd": ("multiply", 1.0), "ReduceL2": ("add", 0.0),
         "ReduceSumSquare": ("add", 0.0), "ReduceL1": ("add", 0.0)}


def keep_dims(e: Emitter, x: Val, y: Val, axes: list[int]) -> Val:
    """`y` (x reduced over `axes`) reshaped to x's rank with 1 at each reduced axis."""
    return e.reshape_dims(y, [1 if i in axes else d for i, d in enumerate(e.dims_of(x))])


def reduce_count(e: Emitter, x: Val, axes: list[int]) -> Val:
    n = e.product([e.dims_of(x)[a] for a in axes])
    if isinstance(n, int):
        return e.scalar(float(n), x.type.dtype)
    return e.reshape(e.convert(n, x.type.dtype), ())


@lowering(*_BODY, since=1)
def reduce(e: Emitter, node, ins, outs):
    x = ins[0]
    axes = onnx_attrs.reduce_axes(e, node, ins, x.type.rank)
    if axes is None:
        return x
    op = node.op_type
    if x.type.dtype == "i1" or (op in ("ReduceMean", "ReduceL2") and x.type.dtype not in ("f32", "f16")):
        raise unsupported(node, f"{op} on {x.type.dtype}")
    src = x
    if op in ("ReduceL2", "ReduceSumSquare"):
        src = e.binary("multiply", x, x)
    elif op == "ReduceL1":
        src = e.unary("abs", x)
    body, init = _BODY[op]
    y = e.reduce(src, axes, body, init)
    if op == "ReduceMean":
        y = e.binary("divide", y, reduce_count(e, x, axes))
    elif op == "ReduceL2":
        y = e.unary("sqrt", y)
    if node.attributes.get_int("keepdims", 1):
        y = keep_dims(e, x, y, axes)
    return y


def _softmax(e: Emitter, x: Val, axis: int, log: bool) -> Val:
    m = keep_dims(e, x, e.reduce(x, [axis], "maximum", -np.inf), [axis])
    z = e.binary("subtract", x, m)
    ez = e.unary("exponential", z)
    s = keep_dims(e, x, e.reduce(ez, [axis], "add", 0.0), [axis])
    if log:
        return e.binary("subtract", z, e.unary("log", s))
    return e.binary("divide", ez, s)


@lowering("Softmax", "LogSoftmax", since=13)
def softmax(e: Emitter, node, ins, outs):
    x = ins[0]
    return _softmax(e, x, onnx_attrs.axis(node, x.type.rank, -1), node.op_type == "LogSoftmax")


@lowering("Softmax", "LogSoftmax", since=1, until=12)
def softmax_old(e: Emitter, node, ins, outs):
    x = ins[0]
    axis = onnx_attrs.axis(node, x.type.rank, 1)
    if axis != x.type.rank - 1:
        raise unsupported(node, f"opset < 13 {node.op_type} over axes {axis}.. (coerced to 2-D)")
    return _softmax(e, x, axis, node.op_type == "LogSoftmax")


@lowering("InstanceNormalization", since=6)
def instance_norm(e: Emitter, node, ins, outs):
    """(x − mean) / √(var + ε) over the spatial axes of each sample and channel, then the
    per-channel scale and bias (shape (C,), broadcast along axis 1)."""
    x, scale, bias = ins
    if x.type.rank < 3:
        raise unsupported(node, f"rank {x.type.rank} input (InstanceNormalization needs N, C and spatial axes)")
    if x.type.shape[1] is None:
        raise unsupported(node, "a channel count known only at run time")
    eps = node.attributes.get_float("epsilon", 1e-5)
    axes = list(range(2, x.type.rank))
    n = reduce_count(e, x, axes)
    mean = keep_dims(e, x, e.binary("divide", e.reduce(x, axes, "add", 0.0), n), axes)
    d = e.binary("subtract", x, mean)
    var = keep_dims(e, x, e.binary("divide", e.reduce(e.binary("multiply", d, d), axes, "add", 0.0), n), axes)
    inv = e.unary("rsqrt", e.binary("add", var, e.scalar(eps, x.type.dtype)))
    per_channel = (x.type.shape[1],) + (1,) * (x.type.rank - 2)
    return e.binary("add", e.binary("multiply", e.binary("multiply", d, inv), e.reshape(scale, per_channel)),
                    e.reshape(bias, per_channel))


@lowering("LayerNormalization", since=17)
def layer_norm(e: Emitter, node, ins, outs):
    x, scale = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    axis = onnx_attrs.axis(node, x.type.rank, -1)
    eps = node.attributes.get_float("epsilon", 1e-5)
    axes = list(range(axis, x.type.rank))
    n = reduce_count(e, x, axes)
    mean = keep_dims(e, x, e.binary("divide", e.reduce(x, axes, "add", 0.0), n), axes)
    d = e.binary("subtract", x, mean)
    var = keep_dims(e, x, e.binary("divide", e.reduce(e.binary("multiply", d, d), axes, "add", 0.0), n), axes)
    inv = e.unary("rsqrt", e.binary("add", var, e.scalar(eps, x.type.dtype)))
    y = e.binary("multiply", e.binary("multiply", d, inv), scale)
    if bias is not None:
        y = e.binary("add", y, bias)
    return [y, mean, inv][:len(outs)]  # Mean and InvStdDev keep the reduced dims as 1, as ONNX's do


@lowering("ArgMax", "ArgMin", since=11)
def arg_extreme(e: Emitter, node, ins, outs):
    """TFLite's ARG_MAX / ARG_MIN, emitted as the TFL op (StableHLO writes an arg-reduction as a
    two-operand reduce, which litert-converter does not legalize). TFLite returns the first index
    of a tie, as ONNX does with select_last_index=0 (=1: over the reversed axis); the reduced axis
    is dropped, then kept as 1 for keepdims=1."""
    x = ins[0]
    axis = onnx_attrs.axis(node, x.type.rank, 0)
    last = node.attributes.get_int("select_last_index", 0)
    n = x.type.shape[axis]
    if last:  # the first index of the reversed axis is the last of the original: n − 1 − i
        if n is None:
            raise unsupported(node, "select_last_index=1 along an axis whose length is known only at run time")
        x = e.op("stablehlo.reverse", [x], x.type, f"dimensions = array<i64: {axis}>")
    dropped = tuple(d for i, d in enumerate(x.type.shape) if i != axis)
    op = "tfl.arg_max" if node.op_type == "ArgMax" else "tfl.arg_min"
    y = e.op(op, [x, e.const(np.array(axis, np.int32), "i32")], T(dropped, "i64"))
    if last:
        y = e.binary("subtract", e.scalar(n - 1, "i64"), y)
    if node.attributes.get_int("keepdims", 1):
        kept = tuple(1 if i == axis else d for i, d in enumerate(x.type.shape))
        if any(d is None for d in kept):
            raise unsupported(node, "keepdims=1 on an input shape known only at run time")
        y = e.reshape(y, kept)
    return y


@lowering("LpNormalization", since=1)
def lp_normalization(e: Emitter, node, ins, outs):
    """x / ‖x‖ₚ along `axis` (p = 1: Σ|x|, p = 2: √Σx²); ONNX adds no epsilon, nor does this."""
    x = ins[0]
    axis = onnx_attrs.axis(node, x.type.rank, -1)
    p = node.attributes.get_int("p", 2)
    if p not in (1, 2):
        raise unsupported(node, f"p={p}")
    mag = e.unary("abs", x) if p == 1 else e.binary("multiply", x, x)
    norm = keep_dims(e, x, e.reduce(mag, [axis], "add", 0.0), [axis])
    return e.binary("divide", x, norm if p == 1 else e.unary("sqrt", norm))


@lowering("CumSum", since=11)
def cumsum(e: Emitter, node, ins, outs):
    """TFLite's CUMSUM, emitted as the TFL op (StableHLO has no cumulative sum; a reduce_window
    over a static axis would be quadratic)."""
    x = ins[0]
    axis = onnx_attrs.const_ints(e, ins[1], "axis")[0] % x.type.rank
    flags = (f"exclusive = {'true' if node.attributes.get_int('exclusive', 0) else 'false'}, "
             f"reverse = {'true' if node.attributes.get_int('reverse', 0) else 'false'}")
    return e.op("tfl.cumsum", [x, e.const(np.array(axis, np.int32), "i32")], x.type, flags)


@lowering("CumProd", since=26, until=26)
def cumprod(e: Emitter, node, ins, outs):
    """y_i = the product of x_j over the j `onnx_attrs.cumulative_mask` selects: x spread along a
    new axis (ones where the mask is off, by select: inf·0 would be NaN) and multiplied out
    (REDUCE_PROD). Quadratic in the axis length; no LiteRT kernel does it in one op."""
    x = ins[0]
    r = x.type.rank
    axis = onnx_attrs.const_ints(e, ins[1], "axis")[0] % r
    mask = onnx_attrs.cumulative_mask(node, x.type.shape[axis])
    n = mask.shape[0]
    perm = [i for i in range(r) if i != axis] + [axis]
    moved = e.transpose(x, perm)
    lead = e.dims_of(moved)[:-1]
    spread = e.reshape_dims(moved, [*lead, 1, n])
    shape = (*moved.type.shape[:-1], n, n)
    sv = None if all(d is not None for d in shape) else e.concat_dims([*lead, n, n])
    cond = e.broadcast_to(e.const(mask, "i1"), shape, sv)
    ones = e.broadcast_to(e.scalar(1, x.type.dtype), shape, sv)
    picked = e.op("stablehlo.select", [cond, e.broadcast_to(spread, shape, sv), ones], T(shape, x.type.dtype))
    y = e.reduce(picked, [r], "multiply", 1)
    return e.transpose(y, [perm.index(i) for i in range(r)])


@lowering("TopK", since=11)
def top_k(e: Emitter, node, ins, outs):
    """TFLite's TOPK_V2 (the last axis, largest first, ties by lower index as ONNX orders them),
    emitted as the TFL op; another axis is moved last and back, smallest-k negates the input."""
    x = ins[0]
    k = onnx_attrs.const_ints(e, ins[1], "K")[0]
    axis = onnx_attrs.axis(node, x.type.rank, -1)
    largest = node.attributes.get_int("largest", 1)
    if not largest and x.type.dtype not in FLOATS:
        raise unsupported(node, f"largest=0 on {x.type.dtype}")
    last = x.type.rank - 1
    perm = list(range(x.type.rank))
    perm[axis], perm[last] = perm[last], perm[axis]
    y = e.transpose(x, perm) if axis != last else x
    if not largest:
        y = e.unary("negate", y)
    shape = (*y.type.shape[:-1], k)
    values, indices = e.ops("tfl.topk_v2", [y, e.const(np.array(k, np.int32), "i32")], [T(shape, y.type.dtype), T(shape, "i32")])
    if not largest:
        values = e.unary("negate", values)
    indices = e.convert(indices, "i64")
    if axis != last:
        values, indices = e.transpose(values, perm), e.transpose(indices, perm)
    return [values, indices]
