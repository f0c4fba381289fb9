"""MatMul and Gemm.

A MatMul by a constant 2-D weight is written as MIL ``linear`` (what Core ML's kernels and
coremltools' torch frontend use for nn.Linear); a following bias Add is fused into it by
coremltools' own ``fuse_matmul_weight_bias`` pass where it applies.
"""

from __future__ import annotations

import numpy as np

from targets.coreml.lower import const, lowering, mb, rank, scalar


@lowering("MatMul", since=1)
def matmul(ctx, node, ins, outs):
    a, b = ins
    w = const(b)
    if w is not None and w.ndim == 2 and not isinstance(a, np.ndarray) and 1 <= rank(a) <= 3:  # MIL linear: rank ≤ 3
        return mb().linear(x=a, weight=np.ascontiguousarray(w.T))
    # numpy's 1-D rules, spelled out (coremltools' matmul type inference fails on 1-D operands)
    a1, b1 = rank(a) == 1, rank(b) == 1
    if a1:
        a = mb().expand_dims(x=a, axes=[0])
    if b1:
        b = mb().expand_dims(x=b, axes=[-1])
    y = mb().matmul(x=a, y=b)
    if a1 or b1:
        y = mb().squeeze(x=y, axes=[-1] if not a1 else [-2] if not b1 else [-2, -1])
    return y


@lowering("Gemm", since=7)
def gemm(ctx, node, ins, outs):
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    alpha = node.attributes.get_float("alpha", 1.0)
    beta = node.attributes.get_float("beta", 1.0)
    ta, tb = node.attributes.get_int("transA", 0), node.attributes.get_int("transB", 0)
    w, bias = const(b), const(c)
    if w is not None and not ta and 1 <= rank(a) <= 3 and (
            c is None or (bias is not None and bias.size == w.shape[0 if tb else 1])):
        weight = (w if tb else w.T) * (alpha if alpha != 1.0 else 1)
        extra = {"bias": (bias.ravel() * beta).astype(weight.dtype)} if bias is not None else {}
        return mb().linear(x=a, weight=np.ascontiguousarray(weight.astype(w.dtype)), **extra)
    y = mb().matmul(x=a, y=b, transpose_x=bool(ta), transpose_y=bool(tb))
    if alpha != 1.0:
        y = mb().mul(x=y, y=scalar(alpha, y))
    if c is not None:
        y = mb().add(x=y, y=c if beta == 1.0 else mb().mul(x=c, y=scalar(beta, c)))
    return y
