"""Data-movement and shape ops: Reshape, Flatten, Transpose, (Un)Squeeze, Concat, Split, Slice,
Shape, Expand, Range, ConstantOfShape, Constant, Pad.

Shape tensors that ONNX computes at run time (Shape → Gather → Concat chains of a dynamic-batch
export) are lowered as ordinary integer tensor ops; Reshape then applies ONNX's 0 / -1 rules on
the runtime values.
"""

from __future__ import annotations

import numpy as np

from targets import onnx_attrs
from targets.stablehlo.emit import FLOATS, NUMPY, Emitter, T, Val, _ints, factors, lowering, unsupported

BIG = 2**30  # an ONNX end at or beyond this means "to the end"


def _shape_i32(e: Emitter, s: Val) -> Val:
    return e.convert(s, "i32")


@lowering("Constant", since=1)
def constant(e: Emitter, node, ins, outs):
    return e.const(onnx_attrs.constant_value(node), outs[0].dtype)


@lowering("Reshape", since=5)
def reshape(e: Emitter, node, ins, outs):
    x, s = ins
    out = outs[0]
    allowzero = node.attributes.get_int("allowzero", 0)
    if out.static:
        return e.reshape(x, out.shape)
    if s.const is not None:
        xd = e.dims_of(x)
        dims: list[int | Val] = onnx_attrs.keep_zeros([int(v) for v in s.const.ravel()], xd, allowzero)
        if -1 in dims:
            i = dims.index(-1)
            dims[i] = _infer(e, xd, [d for j, d in enumerate(dims) if j != i])
        return e.reshape(x, out.shape, e.concat_dims(dims))
    # a shape computed at run time: apply 0 (copy) and -1 (infer) on the values
    s32 = _shape_i32(e, s)
    n = s.type.shape[0]
    if n is None:
        raise unsupported(node, "a shape tensor of unknown length")
    if not allowzero and n <= x.type.rank:
        xs = e.concat_dims(e.dims_of(x)[:n])
        s32 = e.op("stablehlo.select", [e.compare("EQ", s32, e.const(np.zeros(n, np.int32), "i32")), xs, s32], s32.type)
    minus = e.compare("EQ", s32, e.const(np.full(n, -1, np.int32), "i32"))
    ones = e.const(np.ones(n, np.int32), "i32")
    known = e.reshape(e.reduce(e.op("stablehlo.select", [minus, ones, s32], s32.type), [0], "multiply", 1), (1,))
    total = e.product(e.dims_of(x))
    total = total if isinstance(total, Val) else e.const(np.array([total], np.int32), "i32")
    inferred = e.broadcast_to(e.op("stablehlo.divide", [total, known], T((1,), "i32")), (n,))
    s32 = e.op("stablehlo.select", [minus, inferred, s32], s32.type)
    return e.reshape(x, out.shape, s32)


def _infer(e: Emitter, xd: list, known: list) -> int | Val:
    """ONNX Reshape's -1: the input's element count over the other dims. Run-time factors that
    appear on both sides (the same dim read of the same value) cancel, so `[batch, -1]` of a
    `[batch, 32, 1, 1]` tensor needs no arithmetic at all."""
    total_s, total_d = factors(xd)
    known_s, known_d = factors(known)
    left = list(total_d)
    rest = []
    for d in known_d:
        match = next((t for t in left if t.name == d.name), None)
        if match is not None:
            left.remove(match)
        else:
            rest.append(d)
    if not rest and total_s % known_s == 0:
        return e.multiply_out(total_s // known_s, left)
    num, den = e.multiply_out(total_s, left), e.multiply_out(known_s, rest)

    def as_val(d):
        return d if isinstance(d, Val) else e.const(np.array([d], np.int32), "i32")
    return e.op("stablehlo.divide", [as_val(num), as_val(den)], T((1,), "i32"))


@lowering("Flatten", since=1)
def flatten(e: Emitter, node, ins, outs):
    x = ins[0]
    axis = onnx_attrs.flatten_axis(node, x.type.rank) if x.type.rank else 0
    dims = e.dims_of(x)
    a, b = e.product(dims[:axis]), e.product(dims[axis:])
    return e.reshape(x, outs[0].shape, None if outs[0].static else e.concat_dims([a, b]))


@lowering("Transpose", since=1)
def transpose(e: Emitter, node, ins, outs):
    x = ins[0]
    perm = node.attributes.get_ints("perm", list(reversed(range(x.type.rank))))
    if x.const is not None and x.const.size <= 64:
        return e.const(np.transpose(x.const, perm), x.type.dtype)
    return e.transpose(x, perm)


@lowering("Squeeze", "Unsqueeze", since=1)
def squeeze(e: Emitter, node, ins, outs):
    x = ins[0]
    out = outs[0]
    xd = e.dims_of(x)
    if node.op_type == "Squeeze":
        axes = onnx_attrs.squeeze_axes(e, node, ins, x.type.shape)
        dims = [d for i, d in enumerate(xd) if i not in axes]
    else:
        axes = onnx_attrs.unsqueeze_axes(e, node, ins, x.type.rank)
        it = iter(xd)
        dims = [1 if i in axes else next(it) for i in range(out.rank)]
    shape = tuple(d if isinstance(d, int) else None for d in dims)
    if x.const is not None and x.const.size <= 64:
        return e.const(x.const.reshape(shape), x.type.dtype)
    return e.reshape_dims(x, dims)


@lowering("Concat", since=4)
def concat(e: Emitter, node, ins, outs):
    parts = [v for v in ins if v is not None and 0 not in v.type.shape]
    axis = onnx_attrs.axis(node, outs[0].rank, None)
    if all(p.const is not None for p in parts) and sum(p.const.size for p in parts) <= 64:
        return e.const(np.concatenate([p.const for p in parts], axis), outs[0].dtype)
    return e.concat(parts, axis)


def slice_(e: Emitter, x: Val, starts: list, limits: list, strides: list[int], out_shape) -> Val:
    """x[starts:limits:strides] per dim; entries are ints or tensor<1xi32> (run-time values)."""
    if all(isinstance(v, int) for v in [*starts, *limits]) and x.type.static:
        return e.op("stablehlo.slice", [x], T(tuple(out_shape), x.type.dtype),
                    f"start_indices = array<i64{_ints(starts)}>, limit_indices = array<i64{_ints(limits)}>, "
                    f"strides = array<i64{_ints(strides)}>")
    return e.op("stablehlo.real_dynamic_slice", [x, e.concat_dims(starts), e.concat_dims(limits), e.concat_dims(strides)],
                T(tuple(out_shape), x.type.dtype))


def _clamp_index(e: Emitter, v: int | Val, dim: int | Val) -> int | Val:
    """ONNX Slice's index rule for a positive step (`onnx_attrs.slice_index`), on values known
    only at run time: negatives count from the end, then clamp into [0, dim]."""
    if isinstance(v, int) and isinstance(dim, int):
        return onnx_attrs.slice_index(v, dim, 1, end=False)  # the same for a start and an end here
    if isinstance(v, int) and v >= BIG:
        return dim
    if isinstance(v, int) and v >= 0:
        return v if v == 0 else e.op("stablehlo.minimum", [e.const(np.array([v], np.int32), "i32"), dim], dim.type)
    vv = v if isinstance(v, Val) else e.const(np.array([v], np.int32), "i32")
    dd = dim if isinstance(dim, Val) else e.const(np.array([dim], np.int32), "i32")
    neg = e.compare("LT", vv, e.const(np.array([0], np.int32), "i32"))
    vv = e.op("stablehlo.select", [neg, e.op("stablehlo.add", [vv, dd], vv.type), vv], vv.type)
    return e.op("stablehlo.clamp", [e.const(np.array([0], np.int32), "i32"), vv, dd], vv.type)


@lowering("Slice", since=10)
def slice_op(e: Emitter, node, ins, outs):
    x = ins[0]
    rank = x.type.rank
    axes, steps = onnx_attrs.slice_axes(e, node, ins, rank, ins[1].type.shape[0])
    if any(s <= 0 for s in steps):
        raise unsupported(node, "negative steps")
    starts_v, ends_v = _index_list(e, ins[1], len(axes)), _index_list(e, ins[2], len(axes))
    xd = e.dims_of(x)
    starts: list = [0] * rank
    limits: list = list(xd)
    strides = [1] * rank
    for a, s, en, st in zip(axes, starts_v, ends_v, steps):
        starts[a] = _clamp_index(e, s, xd[a])
        limits[a] = _clamp_index(e, en, xd[a])
        strides[a] = st
    return slice_(e, x, starts, limits, strides, outs[0].shape)


def _index_list(e: Emitter, v: Val, n: int) -> list:
    """Per-axis starts/ends: ints where constant, else tensor<1xi32> slices of the run-time tensor."""
    if v.const is not None:
        return [min(int(x), BIG) for x in v.const.ravel().tolist()]
    v32 = e.convert(v, "i32")
    if n == 1:
        return [e.reshape(v32, (1,))]
    return [e.op("stablehlo.slice", [v32], T((1,), "i32"), f"start_indices = array<i64: {i}>, limit_indices = array<i64: {i + 1}>, "
                 "strides = array<i64: 1>") for i in range(n)]


@lowering("Split", since=13)
def split(e: Emitter, node, ins, outs):
    x = ins[0]
    axis = onnx_attrs.axis(node, x.type.rank)
    sizes = onnx_attrs.split_sizes(e, node, ins, x.type.shape[axis], len(outs))
    if sizes is None:
        raise unsupported(node, "an even split of a dynamic axis")
    xd = e.dims_of(x)
    res, at = [], 0
    for sz, t in zip(sizes, outs):
        starts = [0] * x.type.rank
        limits = list(xd)
        starts[axis], limits[axis] = at, at + sz
        res.append(slice_(e, x, starts, limits, [1] * x.type.rank, t.shape))
        at += sz
    return res


@lowering("Shape", since=1)
def shape(e: Emitter, node, ins, outs):
    x = ins[0]
    start, end = onnx_attrs.shape_range(node, x.type.rank)
    dims = x.type.shape[start:end]
    if all(d is not None for d in dims):
        return e.const(np.array(dims, np.int64), "i64")
    return e.convert(e.concat_dims(e.dims_of(x)[start:end]), "i64")


@lowering("Size", since=1)
def size(e: Emitter, node, ins, outs):
    n = e.product(e.dims_of(ins[0]))
    return e.const(np.array(n, np.int64), "i64") if isinstance(n, int) else e.reshape(e.convert(n, "i64"), ())


@lowering("Expand", since=8)
def expand(e: Emitter, node, ins, outs):
    x, s = ins
    out = outs[0]
    if out.static:
        return e.broadcast_to(x, out.shape)
    n = s.type.shape[0]
    if n is None:
        raise unsupported(node, "a shape tensor of unknown length")
    rank = max(n, x.type.rank)
    s32 = _shape_i32(e, s)
    if n < rank:
        s32 = e.concat_dims([*[1] * (rank - n), s32])
    xs = e.concat_dims([*[1] * (rank - x.type.rank), *e.dims_of(x)])
    target = e.op("stablehlo.maximum", [s32, xs], s32.type)
    return e.broadcast_to(x, out.shape, target)


@lowering("Range", since=11)
def range_(e: Emitter, node, ins, outs):
    start, limit, delta = ins
    dtype = outs[0].dtype
    if all(v.const is not None for v in ins):
        return e.const(np.arange(start.const.item(), limit.const.item(), delta.const.item()).astype(start.const.dtype), dtype)
    if delta.const is None or delta.const.item() <= 0:
        raise unsupported(node, "a non-constant or non-positive delta")
    d = delta.const.item()
    if dtype in ("f32", "f16"):
        n = e.unary("ceil", e.binary("divide", e.binary("subtract", limit, start), e.scalar(d, dtype)))
        n = e.convert(n, "i32")
    else:  # the element count in i32 (TFLite's shape type), whatever the ONNX integer type
        span = e.binary("subtract", e.convert(limit, "i32"), e.convert(start, "i32"))
        n = e.binary("divide", e.binary("add", span, e.scalar(int(d) - 1, "i32")), e.scalar(int(d), "i32"))
    n = e.reshape(n, (1,))
    n = e.op("stablehlo.maximum", [n, e.const(np.array([0], np.int32), "i32")], n.type)
    it = e.convert(e.op("stablehlo.dynamic_iota", [n], T((None,), "i32"), "iota_dimension = 0 : i64"), dtype)  # i64 iota: converter error
    return e.binary("add", e.binary("multiply", it, delta), start)


@lowering("ConstantOfShape", since=9)
def constant_of_shape(e: Emitter, node, ins, outs):
    fill = onnx_attrs.fill_value(node)
    dtype = outs[0].dtype
    s = ins[0]
    if s.const is not None:
        return e.const(np.full(s.const.astype(np.int64).tolist(), fill), dtype)
    return e.broadcast_to(e.scalar(fill.item(), dtype), outs[0].shape, _shape_i32(e, s))


@lowering("Pad", since=11)
def pad(e: Emitter, node, ins, outs):
    x = ins[0]
    mode = node.attributes.get_string("mode", "constant")
    if mode != "constant":
        raise unsupported(node, f"mode={mode!r}")
    value = ins[2] if len(ins) > 2 and ins[2] is not None else e.scalar(0, x.type.dtype)
    r = x.type.rank
    pairs = onnx_attrs.pad_pairs(e, node, ins, r)
    lo, hi = [p[0] for p in pairs], [p[1] for p in pairs]
    value = e.reshape(value, ()) if value.type.rank else value
    return e.op("stablehlo.pad", [x, value], T(tuple(outs[0].shape), x.type.dtype),
                f"edge_padding_low = array<i64{_ints(lo)}>, edge_padding_high = array<i64{_ints(hi)}>, "
                f"interior_padding = array<i64{_ints([0] * r)}>")



@lowering("Resize", since=11)
def resize(e: Emitter, node, ins, outs):
    """Nearest upsampling by integer factors: each element repeated (broadcast into a new axis
    after each one, then merged), exact for the coordinate modes `onnx_attrs.resize_repeats` takes.
    Any other float Resize (linear, cubic, downscaling, fractional scales): one matrix product per
    resized axis with ONNX's own interpolation matrix (`onnx_attrs.resize_matrices`)."""
    x = ins[0]
    shape = x.type.shape
    try:
        k = onnx_attrs.resize_repeats(e, node, ins, shape)
    except onnx_attrs.Refused:
        if x.type.dtype not in FLOATS:
            raise
        return _resize_by_matrices(e, x, onnx_attrs.resize_matrices(e, node, ins, shape))
    if all(f == 1 for f in k):
        return x
    spread = tuple(v for d, f in zip(shape, k) for v in (d, f))
    y = e.broadcast_to(x, spread, dims=[2 * i for i in range(len(shape))])
    return e.reshape(y, tuple(d * f for d, f in zip(shape, k)))


def _resize_by_matrices(e: Emitter, x: Val, matrices) -> Val:
    from targets.stablehlo.families.matmul import matmul

    for a, m in enumerate(matrices):
        if m is None:
            continue
        r = x.type.rank
        perm = [i for i in range(r) if i != a] + [a]
        moved = e.transpose(x, perm) if a != r - 1 else x
        y = matmul(e, moved, e.const(m.astype(NUMPY[x.type.dtype]), x.type.dtype))
        x = e.transpose(y, [perm.index(i) for i in range(r)]) if a != r - 1 else y
    return x


@lowering("Trilu", since=14)
def trilu(e: Emitter, node, ins, outs):
    x = ins[0]
    mask = onnx_attrs.trilu_mask(e, node, ins, x.type.shape)
    if x.type.dtype == "i1":
        return e.binary("and", x, e.const(mask.astype(bool), "i1"))
    return e.binary("multiply", x, e.const(mask.astype(NUMPY.get(x.type.dtype, np.float32)), x.type.dtype))
