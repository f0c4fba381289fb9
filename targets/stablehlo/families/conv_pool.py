"""Conv (grouped / depthwise, 1-D to 3-D) and pooling (Max/Average/Global*) in NCHW.

The converter turns NCHW convolutions into TFLite's NHWC CONV_2D / DEPTHWISE_CONV_2D with the
transposes it needs, and fuses a following bias add and ReLU/ReLU6 into the kernel.
"""

from __future__ import annotations

import numpy as np

from targets import onnx_attrs
from targets.stablehlo.emit import FLOATS, NUMPY, Emitter, T, Val, _ints, lowering, unsupported


def _pad_attr(pairs: list[list[int]]) -> str:
    flat = ", ".join(f"[{a}, {b}]" for a, b in pairs)
    return f"dense<[{flat}]> : tensor<{len(pairs)}x2xi64>"


def _spatial_letters(n: int) -> str:
    return ", ".join(str(i) for i in range(n))


@lowering("Conv", since=1)
def conv(e: Emitter, node, ins, outs):
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    n = x.type.rank - 2
    if w.type.rank != n + 2 or any(d is None for d in w.type.shape):
        raise unsupported(node, "a weight of dynamic shape")
    win = onnx_attrs.window(node, w.type.shape[2:])
    sp = _spatial_letters(n)
    out = T(outs[0].shape, x.type.dtype)
    y = e.op("stablehlo.convolution", [x, w], out,
             f"dimension_numbers = #stablehlo.conv<[b, f, {sp}]x[o, i, {sp}]->[b, f, {sp}]>, "
             f"window_strides = array<i64{_ints(win.strides)}>, padding = {_pad_attr(win.explicit_pads(x.type.shape[2:]))}, "
             f"lhs_dilation = array<i64{_ints([1] * n)}>, rhs_dilation = array<i64{_ints(win.dilations)}>, "
             f"feature_group_count = {win.group} : i64, batch_group_count = 1 : i64")
    if b is not None:
        sv = None if out.static else e.shape_of(y)
        y = e.op("stablehlo.add", [y, e.broadcast_to(b, out.shape, sv, dims=[1])], out)
    return y


def _window(e: Emitter, node, x: Val, out: T, body: str, init: float) -> tuple[Val, list[list[int]], list[int]]:
    """reduce_window over the spatial dims; also the (ceil-mode adjusted) pads and the kernel."""
    win = onnx_attrs.pool_window(node)
    kernel, strides, dilations = list(win.kernel), win.strides, win.dilations
    pads = win.explicit_pads(x.type.shape[2:])
    if win.ceil_mode:
        # extra high padding so the last partial window is kept (it only sees real values for max)
        for i, d in enumerate(x.type.shape[2:]):
            if d is None:
                raise unsupported(node, "ceil_mode with dynamic spatial dims")
            want = out.shape[2 + i]
            need = (want - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - (d + pads[i][0] + pads[i][1])
            pads[i][1] += max(0, need)
    if x.type.dtype not in FLOATS and not np.isfinite(init):  # max/min pooling of integers
        info = np.iinfo(NUMPY[x.type.dtype])
        init = info.min if init < 0 else info.max
    return e.op("stablehlo.reduce_window", [x, e.scalar(init, x.type.dtype)], out,
                f"window_dimensions = array<i64{_ints([1, 1, *kernel])}>, "
                f"window_strides = array<i64{_ints([1, 1, *strides])}>, "
                f"window_dilations = array<i64{_ints([1, 1, *dilations])}>, "
                f"padding = {_pad_attr([[0, 0], [0, 0], *pads])}", e.region(body, x.type.dtype)), pads, kernel


@lowering("MaxPool", since=8)
def max_pool(e: Emitter, node, ins, outs):
    if len(node.outputs) > 1 and (node.outputs[1].uses() or node.outputs[1].is_graph_output()):
        raise unsupported(node, "MaxPool's Indices output")
    if node.attributes.get_int("storage_order", 0):
        raise unsupported(node, "storage_order=1")
    y, _, _ = _window(e, node, ins[0], T(outs[0].shape, ins[0].type.dtype), "maximum", -np.inf)
    return [y]


@lowering("AveragePool", since=7)
def average_pool(e: Emitter, node, ins, outs):
    x = ins[0]
    out = T(outs[0].shape, x.type.dtype)
    total, pads, kernel = _window(e, node, x, out, "add", 0.0)
    padded = any(a or b for a, b in pads)
    if not padded or node.attributes.get_int("count_include_pad", 0) and not node.attributes.get_int("ceil_mode", 0):
        return e.binary("divide", total, e.scalar(float(np.prod(kernel)), x.type.dtype))
    if not x.type.static:
        raise unsupported(node, "count_include_pad=0 with padding on a dynamic shape")
    ones = e.const(np.ones((1, 1, *x.type.shape[2:]), np.float32), x.type.dtype)
    counts, _, _ = _window(e, node, ones, T((1, 1, *out.shape[2:]), x.type.dtype), "add", 0.0)
    return e.binary("divide", total, counts)


@lowering("GlobalAveragePool", "GlobalMaxPool", since=1)
def global_pool(e: Emitter, node, ins, outs):
    x = ins[0]
    axes = list(range(2, x.type.rank))
    if node.op_type == "GlobalMaxPool":
        y = e.reduce(x, axes, "maximum", -np.inf)
    else:
        y = e.reduce(x, axes, "add", 0.0)
        size = np.prod([x.type.shape[a] for a in axes]) if all(x.type.shape[a] for a in axes) else None
        if size is None:
            raise unsupported(node, "dynamic spatial dims")
        y = e.binary("divide", y, e.scalar(float(size), x.type.dtype))
    dims = e.dims_of(x)[:2] + [1] * len(axes)
    return e.reshape(y, tuple(outs[0].shape), None if outs[0].static else e.concat_dims(dims))
