"""Shape and layout ops: Shape, Size, Reshape, Flatten, (Un)Squeeze, Transpose, Concat, Split,
Slice, Expand, Tile, Range, ConstantOfShape, Pad.

Where every input is a compile-time constant the result is computed here with numpy (MIL would
fold it anyway); otherwise the MIL shape ops run at run time, so a dynamic batch or sequence
never needs a dim name.
"""

from __future__ import annotations

import numpy as np

from targets import onnx_attrs
from targets.coreml.lower import DTYPES, const, dtype, lowering, mb, np_dtype, numpy_of, rank, scalar, shape, unsupported

_BIG = np.iinfo(np.int32).max


@lowering("Shape", since=1)
def shape_op(ctx, node, ins, outs):
    x = ins[0]
    s = shape(x)
    start, end = onnx_attrs.shape_range(node, rank(x))
    if all(d is not None for d in s[start:end]):
        return np.array(s[start:end], np.int32)
    full = mb().shape(x=x)
    if (start, end) == (0, rank(x)):
        return full
    return mb().slice_by_index(x=full, begin=[start], end=[end])


@lowering("Size", since=1)
def size(ctx, node, ins, outs):
    s = shape(ins[0])
    if all(d is not None for d in s):
        return np.array(int(np.prod(s)), np.int32)
    return mb().reduce_prod(x=mb().shape(x=ins[0]), axes=[0], keep_dims=False)


@lowering("Reshape", since=5)
def reshape(ctx, node, ins, outs):
    x, target = ins
    t = const(target)
    if t is None:  # a shape computed at run time: ONNX's 0 ("keep this dim") is resolved at run time
        n = shape(target)[0] if rank(target) == 1 else None
        if node.attributes.get_int("allowzero", 0) == 0 and n is not None:
            dims = mb().shape(x=x)  # a 0 at index i copies x's dim i; past x's rank there is no 0 to copy
            if n > rank(x):
                dims = mb().concat(values=[dims, np.ones(n - rank(x), np.int32)], axis=0)
            dims = mb().slice_by_index(x=dims, begin=[0], end=[n])
            target = mb().cast(x=target, dtype="int32") if dtype(target) != "int32" else target
            target = mb().select(cond=mb().equal(x=target, y=np.int32(0)), a=dims, b=target)
        return mb().reshape(x=x, shape=target)
    t = [int(v) for v in t.ravel()]
    if node.attributes.get_int("allowzero", 0) == 0 and 0 in t:
        s = shape(x)
        if any(v == 0 and s[i] is None for i, v in enumerate(t)):
            dyn = mb().shape(x=x)
            parts = [mb().slice_by_index(x=dyn, begin=[i], end=[i + 1]) if v == 0 else np.array([v], np.int32)
                     for i, v in enumerate(t)]
            return mb().reshape(x=x, shape=mb().concat(values=parts, axis=0))
        t = onnx_attrs.keep_zeros(t, s, 0)
    if isinstance(x, np.ndarray):
        return x.reshape(t)
    return mb().reshape(x=x, shape=np.array(t, np.int32))


@lowering("Flatten", since=1)
def flatten(ctx, node, ins, outs):
    x = ins[0]
    axis = onnx_attrs.flatten_axis(node, rank(x))
    head, tail = shape(x)[:axis], shape(x)[axis:]
    if all(d is not None for d in head):
        return mb().reshape(x=x, shape=np.array([int(np.prod(head)), -1], np.int32))
    if all(d is not None for d in tail):
        return mb().reshape(x=x, shape=np.array([-1, int(np.prod(tail))], np.int32))
    raise unsupported(node, "Flatten with dynamic dims on both sides of the axis")


@lowering("Squeeze", since=1)
def squeeze(ctx, node, ins, outs):
    x = ins[0]
    axes = onnx_attrs.squeeze_axes(ctx, node, ins, shape(x))
    if isinstance(x, np.ndarray):
        return np.squeeze(x, axis=tuple(axes))
    return mb().squeeze(x=x, axes=axes)


@lowering("Unsqueeze", since=1)
def unsqueeze(ctx, node, ins, outs):
    x = ins[0]
    axes = onnx_attrs.unsqueeze_axes(ctx, node, ins, rank(x))
    if isinstance(x, np.ndarray):
        return np.expand_dims(x, tuple(axes))
    return mb().expand_dims(x=x, axes=axes)


@lowering("Transpose", since=1)
def transpose(ctx, node, ins, outs):
    x = ins[0]
    perm = list(node.attributes.get_ints("perm", list(range(rank(x)))[::-1]))
    if isinstance(x, np.ndarray):
        return np.transpose(x, perm)
    return mb().transpose(x=x, perm=perm)


@lowering("Concat", since=4)
def concat(ctx, node, ins, outs):
    axis = onnx_attrs.axis(node, rank(ins[0]), None)
    parts = [v for v in ins if v is not None and 0 not in shape(v)]  # ONNX allows empty pieces; MIL does not
    if all(isinstance(v, np.ndarray) for v in parts):
        return np.concatenate(parts, axis=axis)
    if len(parts) == 1:
        return mb().identity(x=parts[0])
    return mb().concat(values=parts, axis=axis)


@lowering("Split", since=2)
def split(ctx, node, ins, outs):
    x = ins[0]
    axis = onnx_attrs.axis(node, rank(x))
    sizes = onnx_attrs.split_sizes(ctx, node, ins, shape(x)[axis], len(outs))
    if sizes is None:
        return list(mb().split(x=x, num_splits=node.attributes.get_int("num_outputs", len(outs)), axis=axis))
    return list(mb().split(x=x, split_sizes=np.array(sizes, np.int32), axis=axis))


@lowering("Slice", since=10)
def slice_(ctx, node, ins, outs):
    x = ins[0]
    r = rank(x)
    n = len(const(ins[1]).ravel()) if const(ins[1]) is not None else shape(ins[1])[0]
    axes, steps = onnx_attrs.slice_axes(ctx, node, ins, r, n)
    starts, ends = const(ins[1]), const(ins[2])
    begin, end, stride = [0] * r, [0] * r, [1] * r
    begin_mask, end_mask = [True] * r, [True] * r
    if starts is not None and ends is not None:
        s = shape(x)
        for a, b, e, st in zip(axes, starts.ravel().tolist(), ends.ravel().tolist(), steps):
            stride[a] = st
            begin_mask[a] = end_mask[a] = False
            begin[a], end[a] = int(b), int(e)
            if s[a] is not None:  # ONNX's clamping, resolved here (MIL's differs for negative steps)
                begin[a] = onnx_attrs.slice_index(b, s[a], st, end=False)
                end[a] = onnx_attrs.slice_index(e, s[a], st, end=True)
                end_mask[a] = st < 0 and end[a] == -1
            elif (st > 0 and e >= _BIG) or (st < 0 and e <= -_BIG):
                end_mask[a] = True
        if isinstance(x, np.ndarray):
            idx = tuple(slice(None if begin_mask[i] else begin[i], None if end_mask[i] else end[i], stride[i]) for i in range(r))
            return x[idx]
        return mb().slice_by_index(x=x, begin=np.array(begin, np.int32), end=np.array(end, np.int32),
                                   stride=np.array(stride, np.int32), begin_mask=begin_mask, end_mask=end_mask)
    # starts/ends computed at run time: scatter them into full-rank begin/end vectors
    if any(st != 1 for st in steps):
        raise unsupported(node, "a run-time Slice with steps other than 1")
    begin_parts, end_parts = [], []
    for i in range(r):
        if i in axes:
            k = axes.index(i)
            begin_parts.append(_pick(ins[1], k))
            end_parts.append(_pick(ins[2], k))
            begin_mask[i] = end_mask[i] = False
        else:
            begin_parts.append(np.array([0], np.int32))
            end_parts.append(np.array([0], np.int32))
    return mb().slice_by_index(x=x, begin=mb().concat(values=begin_parts, axis=0), end=mb().concat(values=end_parts, axis=0),
                               begin_mask=begin_mask, end_mask=end_mask)


def _pick(v, k: int):
    c = const(v)
    if c is not None:
        return np.array([min(int(c.ravel()[k]), _BIG)], np.int32)
    return mb().slice_by_index(x=v, begin=[k], end=[k + 1])


@lowering("Expand", since=8)
def expand(ctx, node, ins, outs):
    x, target = ins
    if isinstance(x, np.ndarray) and const(target) is not None:
        return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(int(v) for v in const(target)))).copy()
    kind = dtype(x)
    if kind == "bool":
        return mb().logical_or(x=x, y=mb().fill(shape=target, value=False))
    return mb().add(x=x, y=mb().fill(shape=target, value=scalar(0, x)))  # ONNX Expand broadcasts both ways, as add does


@lowering("Tile", since=6)
def tile(ctx, node, ins, outs):
    return mb().tile(x=ins[0], reps=ins[1])


@lowering("Range", since=11)
def range_(ctx, node, ins, outs):
    start, limit, delta = ins
    if all(const(v) is not None for v in ins):
        return np.arange(const(start), const(limit), const(delta)).astype(np_dtype(dtype(start)))
    return mb().range_1d(start=_scalar(start), end=_scalar(limit), step=_scalar(delta))


def _scalar(v):
    c = const(v)
    if c is not None:
        return c.reshape(())
    return v if rank(v) == 0 else mb().squeeze(x=v)


@lowering("ConstantOfShape", since=9)
def constant_of_shape(ctx, node, ins, outs):
    value = numpy_of(onnx_attrs.fill_value(node)).ravel()[0]
    if outs[0].dtype in DTYPES:
        value = np.array(value, DTYPES[outs[0].dtype][1])
    if const(ins[0]) is not None:
        return np.full([int(d) for d in const(ins[0])], value)
    return mb().fill(shape=ins[0], value=value)


@lowering("Pad", since=11)
def pad(ctx, node, ins, outs):
    x = ins[0]
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(node.attributes.get_string("mode", "constant"))
    if mode is None:
        raise unsupported(node, f"mode {node.attributes.get_string('mode')!r}")
    full = [p for pair in onnx_attrs.pad_pairs(ctx, node, ins, rank(x)) for p in pair]
    if any(p < 0 for p in full):
        raise unsupported(node, "negative pads (cropping)")
    value = 0.0
    if len(ins) > 2 and ins[2] is not None:
        value = float(onnx_attrs.const_array(ctx, ins[2], "constant_value").ravel()[0])
    extra = {"constant_val": scalar(value, x)} if mode == "constant" else {}
    return mb().pad(x=x, pad=np.array(full, np.int32), mode=mode, **extra)


@lowering("Resize", since=11)
def resize(ctx, node, ins, outs):
    """Nearest upsampling by integer factors: per axis, each element tiled into a new axis after
    it, then merged (not MIL's upsample_nearest_neighbor, which the MIL evaluator here cannot run).
    Any other float Resize (linear, cubic, downscaling, fractional scales): one `matmul` per resized
    axis with ONNX's own interpolation matrix (`onnx_attrs.resize_matrices`)."""
    x = ins[0]
    s = shape(x)
    try:
        k = onnx_attrs.resize_repeats(ctx, node, ins, s)
    except onnx_attrs.Refused:
        if dtype(x) not in ("fp32", "fp16"):
            raise
        return _resize_by_matrices(x, onnx_attrs.resize_matrices(ctx, node, ins, s))
    if all(f == 1 for f in k):
        return mb().identity(x=x)
    s = list(s)
    for i, f in enumerate(k):  # one axis at a time, as (before, d, 1, after): Core ML takes rank ≤ 5
        if f == 1:
            continue
        before, after = int(np.prod(s[:i], dtype=np.int64)), int(np.prod(s[i + 1:], dtype=np.int64))
        spread = mb().reshape(x=x, shape=np.array([before, s[i], 1, after], np.int32))
        tiled = mb().tile(x=spread, reps=np.array([1, 1, f, 1], np.int32))
        s[i] *= f
        x = mb().reshape(x=tiled, shape=np.array(s, np.int32))
    return x


def _resize_by_matrices(x, matrices):
    for a, m in enumerate(matrices):
        if m is None:
            continue
        r = rank(x)
        perm = [i for i in range(r) if i != a] + [a]
        moved = mb().transpose(x=x, perm=perm) if a != r - 1 else x
        y = mb().matmul(x=moved, y=m.astype(np_dtype(dtype(x))))
        x = mb().transpose(x=y, perm=[perm.index(i) for i in range(r)]) if a != r - 1 else y
    return x


@lowering("Trilu", since=14)
def trilu(ctx, node, ins, outs):
    x = ins[0]
    mask = onnx_attrs.trilu_mask(ctx, node, ins, shape(x))
    if dtype(x) == "bool":
        return mb().logical_and(x=x, y=mask.astype(bool))
    return mb().mul(x=x, y=mask.astype(np_dtype(dtype(x))))
