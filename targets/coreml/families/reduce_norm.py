"""Reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSumExp/SumSquare), ArgMax/ArgMin, Softmax,
LogSoftmax, LayerNormalization and InstanceNormalization."""

from __future__ import annotations

import numpy as np

from targets import onnx_attrs
from targets.coreml.lower import const, dtype, lowering, mb, np_dtype, rank, scalar, shape, unsupported

_REDUCE = {"ReduceSum": "reduce_sum", "ReduceMean": "reduce_mean", "ReduceMax": "reduce_max", "ReduceMin": "reduce_min",
           "ReduceProd": "reduce_prod", "ReduceL1": "reduce_l1_norm", "ReduceL2": "reduce_l2_norm",
           "ReduceLogSumExp": "reduce_log_sum_exp", "ReduceSumSquare": "reduce_sum_square"}


@lowering(*_REDUCE, since=1)
def reduce(ctx, node, ins, outs):
    x = ins[0]
    axes = onnx_attrs.reduce_axes(ctx, node, ins, rank(x))
    if axes is None:
        return mb().identity(x=x)
    return getattr(mb(), _REDUCE[node.op_type])(x=x, axes=axes, keep_dims=bool(node.attributes.get_int("keepdims", 1)))


@lowering("ArgMax", "ArgMin", since=1)
def arg(ctx, node, ins, outs):
    if node.attributes.get_int("select_last_index", 0):
        raise unsupported(node, "select_last_index=1")
    op = mb().reduce_argmax if node.op_type == "ArgMax" else mb().reduce_argmin
    return op(x=ins[0], axis=onnx_attrs.axis(node, rank(ins[0])), keep_dims=bool(node.attributes.get_int("keepdims", 1)))


@lowering("Softmax", "LogSoftmax", since=13)
def softmax(ctx, node, ins, outs):
    axis = onnx_attrs.axis(node, rank(ins[0]), -1)
    if node.op_type == "Softmax":
        return mb().softmax(x=ins[0], axis=axis)
    x = ins[0]  # x − max − log Σ exp(x − max): exact for large inputs, where log(softmax) is not
    shifted = mb().sub(x=x, y=mb().reduce_max(x=x, axes=[axis], keep_dims=True))
    return mb().sub(x=shifted, y=mb().log(x=mb().reduce_sum(x=mb().exp(x=shifted), axes=[axis], keep_dims=True)))


@lowering("LayerNormalization", since=17)
def layer_norm(ctx, node, ins, outs):
    x, gamma = ins[0], ins[1]
    beta = ins[2] if len(ins) > 2 else None
    if any(o is not None and o.uses() for o in outs[1:]):
        raise unsupported(node, "LayerNormalization's Mean / InvStdDev outputs")
    r = rank(x)
    axis = onnx_attrs.axis(node, r, -1)
    eps = node.attributes.get_float("epsilon", 1e-5)
    kw = {}
    normalized = tuple(shape(x)[axis:])
    # MIL takes gamma / beta of exactly the normalized shape; ONNX allows any broadcastable one
    if const(gamma) is not None and const(gamma).shape == normalized:
        kw["gamma"] = const(gamma)
    if beta is not None and const(beta) is not None and const(beta).shape == normalized:
        kw["beta"] = const(beta)
    y = mb().layer_norm(x=x, axes=list(range(axis, r)), epsilon=scalar(eps, x), **kw)
    if "gamma" not in kw:
        y = mb().mul(x=y, y=gamma)
    if beta is not None and "beta" not in kw:
        y = mb().add(x=y, y=beta)
    return [y]


@lowering("InstanceNormalization", since=6)
def instance_norm(ctx, node, ins, outs):
    x, gamma, beta = ins
    if const(gamma) is None or const(beta) is None:
        raise unsupported(node, "scale / bias computed at run time")
    return mb().instance_norm(x=x, gamma=const(gamma), beta=const(beta), epsilon=scalar(node.attributes.get_float("epsilon", 1e-5), x))


@lowering("LpNormalization", since=1)
def lp_normalization(ctx, node, ins, outs):
    """x / ‖x‖ₚ along `axis` (p = 1 or 2); ONNX adds no epsilon, nor does this."""
    x = ins[0]
    axis = onnx_attrs.axis(node, rank(x), -1)
    p = node.attributes.get_int("p", 2)
    if p not in (1, 2):
        raise unsupported(node, f"p={p}")
    norm = (mb().reduce_l1_norm if p == 1 else mb().reduce_l2_norm)(x=x, axes=[axis], keep_dims=True)
    return mb().real_div(x=x, y=norm)


@lowering("CumSum", since=11)
def cumsum(ctx, node, ins, outs):
    x = ins[0]
    axis = onnx_attrs.const_ints(ctx, ins[1], "axis")[0] % rank(x)
    return mb().cumsum(x=x, axis=axis, exclusive=bool(node.attributes.get_int("exclusive", 0)),
                       reverse=bool(node.attributes.get_int("reverse", 0)))


@lowering("TopK", since=11)
def top_k(ctx, node, ins, outs):
    x = ins[0]
    k = onnx_attrs.const_ints(ctx, ins[1], "K")[0]
    values, indices = mb().topk(x=x, k=k, axis=onnx_attrs.axis(node, rank(x), -1),
                                ascending=not node.attributes.get_int("largest", 1))
    return [values, mb().cast(x=indices, dtype="int32")]


@lowering("CumProd", since=26, until=26)
def cumprod(ctx, node, ins, outs):
    """y_i = the product of x_j over the j `onnx_attrs.cumulative_mask` selects (MIL has no
    cumulative product): x spread along a new axis, ones where the mask is off, reduce_prod."""
    x = ins[0]
    r = rank(x)
    axis = onnx_attrs.const_ints(ctx, ins[1], "axis")[0] % r
    mask = onnx_attrs.cumulative_mask(node, shape(x)[axis])
    perm = [i for i in range(r) if i != axis] + [axis]
    moved = mb().transpose(x=x, perm=perm) if axis != r - 1 else x
    spread = mb().expand_dims(x=moved, axes=[-2])
    picked = mb().select(cond=mask, a=spread, b=np.ones(mask.shape, np_dtype(dtype(x))))
    y = mb().reduce_prod(x=picked, axes=[-1], keep_dims=False)
    return mb().transpose(x=y, perm=[perm.index(i) for i in range(r)]) if axis != r - 1 else y
