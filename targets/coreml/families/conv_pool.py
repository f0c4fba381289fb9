"""Conv (grouped / depthwise, 1-D to 3-D), ConvTranspose, pooling (Max/Average/Global*) and
BatchNormalization, all NCHW as MIL has them.

ONNX lists pads as all begins then all ends; MIL as (begin, end) per spatial dim.
"""

from __future__ import annotations

import numpy as np

from targets import onnx_attrs
from targets.coreml.lower import const, lowering, mb, rank, shape, unsupported

_PAD_TYPE = {"SAME_UPPER": "same", "SAME_LOWER": "same_lower", "VALID": "valid"}


def _spatial(win: onnx_attrs.Window) -> dict:
    """MIL's strides and padding (its pad_type names ONNX's auto_pad; custom pads as (begin, end) per dim)."""
    kw = {"strides": list(win.strides), "pad_type": _PAD_TYPE.get(win.auto_pad, "custom")}
    if kw["pad_type"] == "custom":
        kw["pad"] = [p for pair in win.pads for p in pair]
    return kw


@lowering("Conv", since=1)
def conv(ctx, node, ins, outs):
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    win = onnx_attrs.window(node, shape(w)[2:])
    kw = _spatial(win)
    if b is not None:
        kw["bias"] = b
    return mb().conv(x=x, weight=w, dilations=list(win.dilations), groups=win.group, **kw)


@lowering("ConvTranspose", since=1)
def conv_transpose(ctx, node, ins, outs):
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    if any(node.attributes.get_ints("output_padding", [])):
        raise unsupported(node, "output_padding")
    if "output_shape" in node.attributes:
        raise unsupported(node, "output_shape")
    win = onnx_attrs.window(node, shape(w)[2:])
    kw = _spatial(win)
    if b is not None:
        kw["bias"] = b
    return mb().conv_transpose(x=x, weight=w, dilations=list(win.dilations), groups=win.group, **kw)


@lowering("MaxPool", "AveragePool", since=7)
def pool(ctx, node, ins, outs):
    x = ins[0]
    if node.op_type == "MaxPool" and len(node.outputs) > 1 and node.outputs[1].uses():
        raise unsupported(node, "MaxPool's Indices output")
    win = onnx_attrs.pool_window(node)
    kernel = list(win.kernel)
    kw = _spatial(win)
    if any(d != 1 for d in win.dilations):
        raise unsupported(node, f"dilations {list(win.dilations)}")
    kw["ceil_mode"] = win.ceil_mode
    if win.ceil_mode and kw["pad_type"] == "custom":
        _check_ceil(node, x, win)
    if node.op_type == "MaxPool":
        return mb().max_pool(x=x, kernel_sizes=kernel, **kw)
    return mb().avg_pool(x=x, kernel_sizes=kernel, exclude_padding_from_average=not node.attributes.get_int("count_include_pad", 0), **kw)


def _check_ceil(node, x, win: onnx_attrs.Window) -> None:
    """ONNX (like PyTorch) drops a last ceil-mode window that starts in the end padding; MIL (its
    documented rule, which coremltools' shape inference follows) does so only when there is any
    padding. Where the two output sizes differ the pool is refused rather than resized."""
    for i, (d, k, s_, (pl, pr)) in enumerate(zip(shape(x)[2:], win.kernel, win.strides, win.pads)):
        if d is None:
            raise unsupported(node, "ceil_mode=1 with a dynamic spatial dim")
        onnx_out = win.pool_output(d, i, (pl, pr))
        mil_out = (d + pl + pr - k + s_ - 1) // s_ + 1
        if (mil_out - 1) * s_ >= d + pl and (pl > 0 or pr > 0):
            mil_out -= 1
        if onnx_out != mil_out:
            raise unsupported(node, f"ceil_mode=1 here (ONNX gives {onnx_out} outputs on spatial dim {i}, Core ML's rule {mil_out})")


@lowering("GlobalAveragePool", "GlobalMaxPool", since=1)
def global_pool(ctx, node, ins, outs):
    x = ins[0]
    axes = list(range(2, rank(x)))
    op = mb().reduce_mean if node.op_type == "GlobalAveragePool" else mb().reduce_max
    return op(x=x, axes=axes, keep_dims=True)


@lowering("BatchNormalization", since=9)
def batch_norm(ctx, node, ins, outs):
    x, scale, bias, mean, var = ins[:5]
    if node.attributes.get_int("training_mode", 0):
        raise unsupported(node, "training_mode=1")
    if any(const(v) is None for v in (scale, bias, mean, var)):
        raise unsupported(node, "statistics computed at run time")
    return mb().batch_norm(x=x, mean=const(mean), variance=const(var), gamma=const(scale), beta=const(bias),
                           epsilon=np.array(node.attributes.get_float("epsilon", 1e-5), const(scale).dtype))
