"""Gather, GatherElements, GatherND.

ONNX allows negative indices; MIL's gather ops are given normalized ones where the indices are
constant and the dim static, and a run-time ``select(i < 0, i + dim, i)`` otherwise.
"""

from __future__ import annotations

import numpy as np

from targets import onnx_attrs
from targets.coreml.lower import const, dims_of, dtype, lowering, mb, rank, shape


def _on_ints(gather_fn):
    """MIL's gathers take no bool data: gather the mask as int32 and cast back."""
    def wrapped(ctx, node, ins, outs):
        x = ins[0]
        if isinstance(x, np.ndarray) or dtype(x) != "bool":
            return gather_fn(ctx, node, ins, outs)
        y = gather_fn(ctx, node, [mb().cast(x=x, dtype="int32"), *ins[1:]], outs)
        return mb().cast(x=y, dtype="bool")
    wrapped.__name__ = gather_fn.__name__
    return wrapped


def _normalized(x, indices, axis: int):
    c = const(indices)
    d = shape(x)[axis]
    if c is not None:
        c = c.astype(np.int32)
        if (c >= 0).all():
            return c
        if d is not None:
            return onnx_attrs.positive_indices(c, d).astype(np.int32)
    dim = dims_of(x)
    dim = np.int32(d) if d is not None else mb().gather(x=dim, indices=np.int32(axis), axis=0)
    return mb().select(cond=mb().less(x=indices, y=np.int32(0)), a=mb().add(x=indices, y=dim), b=indices)


@lowering("Gather", since=1)
@_on_ints
def gather(ctx, node, ins, outs):
    x, indices = ins
    axis = onnx_attrs.axis(node, rank(x))
    idx = _normalized(x, indices, axis)
    if isinstance(x, np.ndarray) and isinstance(idx, np.ndarray):
        return np.take(x, idx, axis=axis)
    return mb().gather(x=x, indices=idx, axis=axis, validate_indices=False)


@lowering("GatherElements", since=11)
@_on_ints
def gather_elements(ctx, node, ins, outs):
    x, indices = ins
    axis = onnx_attrs.axis(node, rank(x))
    return mb().gather_along_axis(x=x, indices=_normalized(x, indices, axis), axis=axis, validate_indices=False)


@lowering("GatherND", since=11)
@_on_ints
def gather_nd(ctx, node, ins, outs):
    x, indices = ins
    batch_dims = node.attributes.get_int("batch_dims", 0)
    c = const(indices)
    if c is None or (c < 0).any():
        k = shape(indices)[-1]
        dims = shape(x)[batch_dims:batch_dims + k]
        if all(d is not None for d in dims):
            dims = np.array(dims, np.int32)
        else:
            dims = mb().slice_by_index(x=mb().shape(x=x), begin=[batch_dims], end=[batch_dims + k])
        if c is not None and isinstance(dims, np.ndarray):
            indices = onnx_attrs.positive_indices(c, dims).astype(np.int32)
        else:
            indices = mb().select(cond=mb().less(x=indices, y=np.int32(0)), a=mb().add(x=indices, y=dims), b=indices)
    return mb().gather_nd(x=x, indices=indices, batch_dims=batch_dims, validate_indices=False)
