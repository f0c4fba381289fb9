"""Indexed reads: Gather, GatherElements, GatherND.

GatherElements and GatherND (with ``batch_dims``) become TFLite's GATHER_ND: GatherElements
gives every output element a full index vector (its indices on the gathered axis, an iota on
the others); GatherND's batch dims get an iota leading its index vector. GATHER_ND is emitted as
the TFL op itself (see `gather_nd`); Gather stays a ``stablehlo.gather`` (GATHER), except rows of a
constant 2-D table (an embedding), which become EMBEDDING_LOOKUP.

Negative indices are normalised (``i + dim`` where ``i < 0``) as ONNX allows; an index out of
range is undefined behaviour in ONNX and is not checked here either.
"""

from __future__ import annotations

import numpy as np

from targets import onnx_attrs
from targets.stablehlo.emit import Emitter, T, Val, _ints, lowering, unsupported


def _wrap_negative(e: Emitter, idx: Val, dims: Val) -> Val:
    """`idx` (i32) with `dims` (i32, a scalar or one per trailing-dim entry) added where it is
    negative. Above rank 4 this runs on a rank-2 view: LiteRT's LESS/SELECT broadcast at most
    4-D, and litert-converter 0.5.0 refuses a rank-5 dynamic LESS outright."""
    if idx.type.rank > 4:
        shape, full = idx.type.shape, e.dims_of(idx)
        lead = e.product(full[:-1])
        flat = e.reshape(idx, (lead if isinstance(lead, int) else None, shape[-1]), e.concat_dims([lead, full[-1]]))
        return e.reshape(_wrap_negative(e, flat, dims), shape, e.concat_dims(full))
    neg = e.compare("LT", idx, e.scalar(0, "i32"))
    return e.op("stablehlo.select", [neg, e.binary("add", idx, dims), idx], idx.type)


def _iota(e: Emitter, dims: list, axis: int) -> Val:
    """An i32 tensor of shape `dims` (ints or run-time tensor<1xi32>) plus a trailing 1,
    counting along `axis`."""
    shape = (*[d if isinstance(d, int) else None for d in dims], 1)
    out = T(shape, "i32")
    if all(d is not None for d in shape):
        return e.op("stablehlo.iota", [], out, f"iota_dimension = {axis} : i64")
    # a 1-D dynamic_iota broadcast along `axis`: litert-converter 0.5.0 fails on a rank > 1
    # dynamic_iota ('arith.index_cast' on its shape operand)
    n = dims[axis]
    line = (e.op("stablehlo.iota", [], T((n,), "i32"), "iota_dimension = 0 : i64") if isinstance(n, int) else
            e.op("stablehlo.dynamic_iota", [n], T((None,), "i32"), "iota_dimension = 0 : i64"))
    return e.broadcast_to(line, shape, e.concat_dims([*dims, 1]), dims=[axis])


def _as_column(e: Emitter, x: Val) -> Val:
    """`x` with a trailing dim of 1 (an index-vector component)."""
    return e.reshape_dims(x, [*e.dims_of(x), 1])


def gather_nd(e: Emitter, data: Val, index: Val, out_shape) -> Val:
    """TFLite's GATHER_ND: the index vector (`index`'s trailing dim, length n) addresses data's
    first n dims. Emitted as the TFL op itself: litert-converter's stablehlo.gather legalization
    needs a static operand, GATHER_ND does not, and the converter passes TFL ops through."""
    return e.op("tfl.gather_nd", [data, index], T(tuple(out_shape), data.type.dtype))


@lowering("Gather", since=1)
def gather(e: Emitter, node, ins, outs):
    data, idx = ins
    axis = onnx_attrs.axis(node, data.type.rank)
    if data.const is not None and idx.const is not None and data.const.size <= 4096:
        return e.const(np.take(data.const, idx.const, axis=axis), data.type.dtype)
    if idx.const is not None:
        dim = data.type.shape[axis]
        norm = onnx_attrs.positive_indices(idx.const, dim or 0)
        if dim is None and (idx.const < 0).any():
            raise unsupported(node, "negative indices into a dynamic axis")
        idx = e.const(norm.astype(np.int32), "i32")
    else:
        idx = _wrap_negative(e, e.convert(idx, "i32"), e.reshape(e.dim(data, axis), ()))
    out = T(tuple(outs[0].shape), data.type.dtype)
    if data.const is not None and data.type.rank == 2 and axis == 0 and data.type.dtype in ("f32", "f16"):
        # a constant table read by rows — an embedding: TFLite's EMBEDDING_LOOKUP, the op LiteRT's
        # quantizers store in float16 / int8 (a GATHER's table they leave float32)
        flat = e.reshape_dims(idx, [e.product(e.dims_of(idx))]) if idx.type.rank != 1 else idx
        rows = e.op("tfl.embedding_lookup", [flat, data], T((flat.type.shape[0], data.type.shape[1]), data.type.dtype))
        return e.reshape_dims(rows, [*e.dims_of(idx), data.type.shape[1]])
    sizes = [1 if i == axis else d for i, d in enumerate(data.type.shape)]
    if any(d is None for d in sizes):
        # slices of dynamic size: litert-converter 0.5.0 cannot export stablehlo.dynamic_gather,
        # so TFLite's GATHER is emitted directly (as GATHER_ND is, see `gather_nd`)
        return e.op("tfl.gather", [data, idx], out, f"axis = {axis} : i32, batch_dims = 0 : i32")
    q = idx.type.rank
    # An explicit trailing index-vector dim of size 1: left implicit, litert-converter 0.5.0
    # reshapes dynamic indices with a literal 0 in the new shape, which LiteRT reads as size 0.
    idx = _as_column(e, idx)
    offset = [i for i in range(axis)] + [i - 1 + q for i in range(axis + 1, data.type.rank)]
    attrs = (f"dimension_numbers = #stablehlo.gather<offset_dims = [{', '.join(map(str, offset))}], "
             f"collapsed_slice_dims = [{axis}], start_index_map = [{axis}], index_vector_dim = {q}>, "
             f"indices_are_sorted = false, slice_sizes = array<i64{_ints(sizes)}>")
    return e.op("stablehlo.gather", [data, idx], out, attrs)


@lowering("GatherElements", since=11)
def gather_elements(e: Emitter, node, ins, outs):
    data, idx = ins
    r = data.type.rank
    axis = onnx_attrs.axis(node, r)
    idx = _wrap_negative(e, e.convert(idx, "i32"), e.reshape(e.dim(data, axis), ()))
    dims = e.dims_of(idx)
    columns = [_as_column(e, idx) if d == axis else _iota(e, dims, d) for d in range(r)]
    return gather_nd(e, data, e.concat(columns, r), outs[0].shape)


@lowering("GatherND", since=11)
def gather_nd_op(e: Emitter, node, ins, outs):
    data, idx = ins
    b = node.attributes.get_int("batch_dims", 0)
    k = idx.type.shape[-1]
    if k is None:
        raise unsupported(node, "an index vector of unknown length")
    q = idx.type.rank
    idx = _wrap_negative(e, e.convert(idx, "i32"), e.concat_dims(e.dims_of(data)[b:b + k]))
    if b:  # batch dims: their iotas lead the index vector, so one gather addresses batch + indexed dims
        dims = e.dims_of(idx)[:-1]
        idx = e.concat([*[_iota(e, dims, d) for d in range(b)], idx], q - 1)
    return gather_nd(e, data, idx, outs[0].shape)
