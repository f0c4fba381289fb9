"""MatMul (numpy batch broadcasting) and Gemm as ``stablehlo.dot_general``.

A 2-D constant right operand is the converter's FULLY_CONNECTED pattern; batched operands give
BATCH_MATMUL.
"""

from __future__ import annotations

import numpy as np

from targets.stablehlo.emit import Emitter, T, Val, broadcast_shape, lowering, unsupported


def dot(e: Emitter, a: Val, b: Val, batch: int, b_transposed: bool = False) -> Val:
    """a [..., M, K] · b [..., K, N] (b [..., N, K] if `b_transposed`) with `batch` leading
    batch dims on both."""
    bd = list(range(batch))
    n = b.type.shape[-2] if b_transposed else b.type.shape[-1]
    out = T((*a.type.shape[:batch], a.type.shape[-2], n), a.type.dtype)
    return e.op("stablehlo.dot_general", [a, b], out,
                f"dot_dimension_numbers = #stablehlo.dot<lhs_batching_dimensions = {bd}, rhs_batching_dimensions = {bd}, "
                f"lhs_contracting_dimensions = [{batch + 1}], rhs_contracting_dimensions = [{batch + int(b_transposed)}]>")


def matmul(e: Emitter, a: Val, b: Val) -> Val:
    squeeze_a = squeeze_b = False
    if a.type.rank == 1:
        a, squeeze_a = e.reshape(a, (1, a.type.shape[0])), True
    if b.type.rank == 1:
        b, squeeze_b = e.reshape(b, (b.type.shape[0], 1)), True
    if a.type.rank == 2 and b.type.rank == 2:
        y = dot(e, a, b, 0)
    elif b.type.rank == 2:
        # [..., M, K] · [K, N]: leading dims folded into M — one FULLY_CONNECTED
        dims = e.dims_of(a)
        m = e.product(dims[:-1])
        k, n = dims[-1], e.dims_of(b)[-1]
        flat = e.reshape(a, (m if isinstance(m, int) else None, a.type.shape[-1]),
                         None if isinstance(m, int) and isinstance(k, int) else e.concat_dims([m, k]))
        y2 = dot(e, flat, b, 0)
        shape = (*a.type.shape[:-1], b.type.shape[-1])
        y = e.reshape(y2, shape, None if all(d is not None for d in shape) else e.concat_dims([*dims[:-1], n]))
    else:
        lead = broadcast_shape(a.type.shape[:-2], b.type.shape[:-2])
        rank = len(lead)
        sv_a = sv_b = None
        if not all(d is not None for d in lead):
            batch_shape = e.broadcast_dims([e.dims_of(a)[:-2], e.dims_of(b)[:-2]], rank)
            sv_a = e.concat([batch_shape, e.concat_dims(e.dims_of(a)[-2:])], 0)
            sv_b = e.concat([batch_shape, e.concat_dims(e.dims_of(b)[-2:])], 0)
        a = e.broadcast_to(a, (*lead, *a.type.shape[-2:]), sv_a)
        b = e.broadcast_to(b, (*lead, *b.type.shape[-2:]), sv_b)
        y = dot(e, a, b, rank)
    if squeeze_a or squeeze_b:
        drop = {y.type.rank - 1} if squeeze_b else set()
        if squeeze_a:
            drop.add(y.type.rank - 2)
        y = e.reshape_dims(y, [d for i, d in enumerate(e.dims_of(y)) if i not in drop])
    return y


@lowering("MatMul", since=1)
def lower_matmul(e: Emitter, node, ins, outs):
    a, b = ins
    if b.type.rank > 2 and a.type.rank < 2:
        raise unsupported(node, "a 1-D left operand with a batched right operand")
    return matmul(e, a, b)


@lowering("Gemm", since=7)
def gemm(e: Emitter, node, ins, outs):
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    alpha, beta = node.attributes.get_float("alpha", 1.0), node.attributes.get_float("beta", 1.0)
    if node.attributes.get_int("transA", 0):
        a = e.transpose(a, [1, 0])
    # transB contracts over B's dim 1 instead of transposing it: [N, K] is FULLY_CONNECTED's own
    # weight layout, and a transpose after a weight's dequantize hid it from the converter's
    # integer folding (EfficientNet's classifier stayed a float FULLY_CONNECTED)
    transposed = bool(node.attributes.get_int("transB", 0))
    n = b.type.shape[0 if transposed else 1]
    if (transposed and alpha == 1.0 and beta == 1.0 and c is not None and c.const is not None and n is not None
            and c.const.size == n and a.type.shape[0] is None and a.type.dtype == "f32"):
        # a constant bias on a dynamic batch: TFL's FULLY_CONNECTED with its bias, as the
        # converter builds it from a static shape; a dynamic_broadcast_in_dim add after the dot
        # was not fused, and the int8 FULLY_CONNECTED stayed float
        bias = e.const(c.const.reshape(n).astype(np.float32), "f32")
        return e.op("tfl.fully_connected", [a, b, bias], T((None, n), a.type.dtype),
                    'fused_activation_function = "NONE", keep_num_dims = false, weights_format = "DEFAULT"')
    y = dot(e, a, b, 0, b_transposed=transposed)
    if alpha != 1.0:
        y = e.binary("multiply", y, e.scalar(alpha, y.type.dtype))
    if c is not None:
        if beta != 1.0:
            c = e.binary("multiply", c, e.scalar(beta, c.type.dtype))
        y = e.binary("add", y, c)
    return y
