"""ONNX IR → StableHLO (MLIR text): the emitter every op-family lowering writes through.

Why by hand: the LiteRT converter (litert-converter) takes StableHLO, and nothing installable
here lowers ONNX to StableHLO — onnx-mlir emits its own dialect, and the torch routes
(torch_xla, litert-torch) start from PyTorch and would bypass our IR, passes and calibration. So
each ONNX op family has a lowering module (``targets/stablehlo/<family>.py``), registered per
(domain, op, opset range); layout (NCHW → NHWC), fusion, op versions and integer kernels stay
the converter's job.

Text is emitted in MLIR's generic form (``"stablehlo.add"(%a, %b) : (...) -> ...``), which is
stable across StableHLO's pretty-syntax changes and readable when dumped (``model.mlir``).

Dynamic dims (``batch``, ``sequence``) stay dynamic (``?``): an op that needs a runtime shape
computes it from its operands (``get_dimension_size``), never from dim names, so nothing depends
on what shape inference called a dim. The LiteRT converter turns that into SHAPE/SLICE ops and
the Interpreter resizes per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from targets.lowering import Lowerings

# ONNX element type → MLIR element type.
ELEMENT = {
    ir.DataType.FLOAT: "f32", ir.DataType.FLOAT16: "f16", ir.DataType.BFLOAT16: "bf16", ir.DataType.DOUBLE: "f64",
    ir.DataType.INT64: "i64", ir.DataType.INT32: "i32", ir.DataType.INT16: "i16", ir.DataType.INT8: "i8",
    ir.DataType.UINT8: "ui8", ir.DataType.BOOL: "i1",
}
NUMPY = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i64": np.int64, "i32": np.int32,
         "i16": np.int16, "i8": np.int8, "ui8": np.uint8, "i1": np.bool_}
FLOATS = ("f32", "f16", "bf16", "f64")


@dataclass(frozen=True)
class T:
    """A ranked tensor type: dims (None = dynamic) and MLIR element type."""

    shape: tuple[int | None, ...]
    dtype: str

    def __str__(self) -> str:
        dims = "".join(("?" if d is None else str(d)) + "x" for d in self.shape)
        return f"tensor<{dims}{self.dtype}>"

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def static(self) -> bool:
        return all(d is not None for d in self.shape)

    def with_dtype(self, dtype: str) -> T:
        return T(self.shape, dtype)

    def with_shape(self, shape: Sequence[int | None]) -> T:
        return T(tuple(shape), self.dtype)


@dataclass(frozen=True)
class Val:
    name: str
    type: T
    const: np.ndarray | None = None  # the value, when it is a compile-time constant
    quant: tuple[str, str] | None = None  # (quantized MLIR type, ONNX storage type) of a Q output


def _dense(array: np.ndarray, dtype: str) -> str:
    if dtype == "i1":
        if array.size == 0:
            return "dense<>"
        if array.size == 1 or (array == array.ravel()[0]).all():  # splat
            return "dense<true>" if array.ravel()[0] else "dense<false>"
        return f"dense<{_nested_bools(array)}>"
    if array.size == 0:
        return "dense<>"
    if array.size == 1 or (array == array.ravel()[0]).all():  # splat
        v = array.ravel()[0]
        if dtype in FLOATS:
            bits = np.array(v, NUMPY.get(dtype, np.float32)).tobytes()[::-1].hex().upper()  # big-endian bit pattern
            return f"dense<0x{bits}>"
        return f"dense<{int(v)}>"
    return 'dense<"0x' + np.ascontiguousarray(array.astype(NUMPY[dtype])).tobytes().hex().upper() + '">'


def _nested_bools(a: np.ndarray) -> str:
    """A bool array as MLIR's nested literal (the flat form only parses for rank 1)."""
    if a.ndim == 1:
        return "[" + ", ".join("true" if b else "false" for b in a.tolist()) + "]"
    return "[" + ", ".join(_nested_bools(x) for x in a) + "]"


class Emitter:
    """Collects one function's body (`targets.stablehlo.module.Module` wraps it in the function)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._n = 0
        self._consts: dict[tuple, Val] = {}  # small constants, emitted once
        self._dims: dict[tuple[str, int], Val] = {}  # run-time dim reads, one per value and axis

    def fresh(self) -> str:
        self._n += 1
        return f"%v{self._n}"

    # -- raw ops --------------------------------------------------------------------------
    def op(self, name: str, operands: Sequence[Val], out: T, attrs: str = "", region: str = "") -> Val:
        res = self.fresh()
        ins = ", ".join(v.name for v in operands)
        types = ", ".join(str(v.type) for v in operands)
        attrs = f" {{{attrs}}}" if attrs else ""
        region = f" ({region})" if region else ""
        self.lines.append(f'{res} = "{name}"({ins}){region}{attrs} : ({types}) -> {out}')
        return Val(res, out)

    def ops(self, name: str, operands: Sequence[Val], outs: Sequence[T], attrs: str = "") -> list[Val]:
        """An op with several results (`%v:n`), each its own value (`%v#i`)."""
        res = self.fresh()
        ins = ", ".join(v.name for v in operands)
        types = ", ".join(str(v.type) for v in operands)
        attrs = f" {{{attrs}}}" if attrs else ""
        self.lines.append(f'{res}:{len(outs)} = "{name}"({ins}){attrs} : ({types}) -> ({", ".join(str(t) for t in outs)})')
        return [Val(f"{res}#{i}", t) for i, t in enumerate(outs)]

    def const(self, array: np.ndarray, dtype: str | None = None) -> Val:
        array = np.asarray(array)
        dtype = dtype or _element_of(array)
        key = (dtype, array.shape, array.tobytes()) if array.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        out = T(tuple(array.shape), dtype)
        res = self.fresh()
        self.lines.append(f'{res} = "stablehlo.constant"() {{value = {_dense(array, dtype)} : {out}}} : () -> {out}')
        v = Val(res, out, array.astype(NUMPY.get(dtype, array.dtype), copy=False))
        if key is not None:
            self._consts[key] = v
        return v

    def scalar(self, value: float | int | bool, dtype: str) -> Val:
        return self.const(np.array(value, NUMPY.get(dtype, np.float32)), dtype)

    def unary(self, name: str, x: Val, out: T | None = None) -> Val:
        return self.op(f"stablehlo.{name}", [x], out or x.type)

    def binary(self, name: str, a: Val, b: Val, out: T | None = None) -> Val:
        """Element-wise with numpy broadcasting (both operands brought to the result shape)."""
        shape = broadcast_shape(a.type.shape, b.type.shape)
        a2, b2 = self.broadcast_pair(a, b, shape)
        return self.op(f"stablehlo.{name}", [a2, b2], out or T(shape, a.type.dtype))

    def compare(self, direction: str, a: Val, b: Val) -> Val:
        shape = broadcast_shape(a.type.shape, b.type.shape)
        a2, b2 = self.broadcast_pair(a, b, shape)
        kind = "FLOAT" if a.type.dtype in FLOATS else "UNSIGNED" if a.type.dtype in ("ui8", "i1") else "SIGNED"
        return self.op("stablehlo.compare", [a2, b2], T(shape, "i1"),
                       f"comparison_direction = #stablehlo<comparison_direction {direction}>, "
                       f"compare_type = #stablehlo<comparison_type {kind}>")

    def convert(self, x: Val, dtype: str) -> Val:
        if x.type.dtype == dtype:
            return x
        if x.const is not None and x.const.size <= 64:
            return self.const(x.const.astype(NUMPY[dtype]), dtype)
        return self.op("stablehlo.convert", [x], x.type.with_dtype(dtype))

    # -- shapes ---------------------------------------------------------------------------
    def dim(self, x: Val, axis: int) -> Val:
        """Size of `axis` as a tensor<1xi32> (read once per value and axis)."""
        d = x.type.shape[axis]
        if d is not None:
            return self.const(np.array([d], np.int32), "i32")
        key = (x.name, axis)
        if key not in self._dims:
            s = self.op("stablehlo.get_dimension_size", [x], T((), "i32"), f"dimension = {axis} : i64")
            self._dims[key] = self.op("stablehlo.reshape", [s], T((1,), "i32"))
        return self._dims[key]

    def dims_of(self, x: Val) -> list[int | Val]:
        """Each dim of `x`: an int where static, else a tensor<1xi32> read at run time."""
        return [d if d is not None else self.dim(x, i) for i, d in enumerate(x.type.shape)]

    def product(self, dims: Sequence[int | Val]) -> int | Val:
        """The product of dims (an int when all are static, else a tensor<1xi32>)."""
        static, dynamic = factors(dims)
        return self.multiply_out(static, dynamic)

    def multiply_out(self, static: int, dynamic: Sequence[Val]) -> int | Val:
        if not dynamic:
            return static
        acc = dynamic[0]
        for d in dynamic[1:]:
            acc = self.op("stablehlo.multiply", [acc, d], d.type)
        return acc if static == 1 else self.op("stablehlo.multiply", [acc, self.const(np.array([static], np.int32), "i32")], acc.type)

    def shape_of(self, x: Val) -> Val:
        """The runtime shape of `x` as tensor<rank x i32>."""
        return self.concat_dims([x.type.shape[i] if x.type.shape[i] is not None else self.dim(x, i)
                                 for i in range(x.type.rank)])

    def concat_dims(self, dims: Sequence[int | None | Val]) -> Val:
        """A 1-D i32 shape tensor from ints and tensor<1xi32> pieces (static runs merged)."""
        if all(isinstance(d, int) for d in dims):
            return self.const(np.array(dims, np.int32), "i32")
        parts: list[Val] = []
        run: list[int] = []
        for d in dims:
            if isinstance(d, int):
                run.append(d)
                continue
            if run:
                parts.append(self.const(np.array(run, np.int32), "i32"))
                run = []
            parts.append(d)
        if run:
            parts.append(self.const(np.array(run, np.int32), "i32"))
        return self.concat(parts, 0)

    def concat(self, parts: Sequence[Val], axis: int) -> Val:
        if len(parts) == 1:
            return parts[0]
        shape = list(parts[0].type.shape)
        sizes = [p.type.shape[axis] for p in parts]
        shape[axis] = None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[arg-type]
        for i in range(len(shape)):
            if i != axis and shape[i] is None:
                shape[i] = next((p.type.shape[i] for p in parts if p.type.shape[i] is not None), None)
        return self.op("stablehlo.concatenate", parts, T(tuple(shape), parts[0].type.dtype), f"dimension = {axis} : i64")

    def broadcast_to(self, x: Val, shape: tuple[int | None, ...], shape_val: Val | None = None,
                     dims: Sequence[int] | None = None) -> Val:
        """`x` broadcast to `shape` (numpy rules, right-aligned, unless `dims` is given)."""
        if dims is None:
            dims = list(range(len(shape) - x.type.rank, len(shape)))
        if x.type.shape == shape and list(dims) == list(range(len(shape))):
            return x
        out = T(shape, x.type.dtype)
        attr = f"broadcast_dimensions = array<i64{_ints(dims)}>"
        if all(d is not None for d in shape):
            if x.const is not None and x.const.size == 1 and x.type.dtype != "i1":
                return self.const(np.broadcast_to(x.const.reshape(()), shape), x.type.dtype)
            return self.op("stablehlo.broadcast_in_dim", [x], out, attr)
        if shape_val is None:
            raise AssertionError("a dynamic broadcast needs its shape tensor")
        return self.op("stablehlo.dynamic_broadcast_in_dim", [x, shape_val], out, attr)

    def broadcast_pair(self, a: Val, b: Val, shape: tuple[int | None, ...]) -> tuple[Val, Val]:
        if a.type.shape == shape and b.type.shape == shape:
            return a, b
        shape_val = None
        if not all(d is not None for d in shape):
            shape_val = self.broadcast_shape_val([a, b], len(shape))
        return self.broadcast_to(a, shape, shape_val), self.broadcast_to(b, shape, shape_val)

    def broadcast_shape_val(self, vals: Sequence[Val], rank: int) -> Val:
        """Runtime numpy-broadcast shape of `vals` (the element-wise max of their padded shapes)."""
        return self.broadcast_dims([self.dims_of(v) for v in vals], rank)

    def broadcast_dims(self, dim_lists: Sequence[Sequence[int | Val]], rank: int) -> Val:
        padded = [self.concat_dims([*[1] * (rank - len(d)), *d]) for d in dim_lists]
        out = padded[0]
        for p in padded[1:]:
            out = self.op("stablehlo.maximum", [out, p], out.type)
        return out

    def reshape(self, x: Val, shape: tuple[int | None, ...], shape_val: Val | None = None) -> Val:
        out = T(tuple(shape), x.type.dtype)
        if x.type.shape == out.shape:
            return x
        if out.static:
            if x.const is not None and x.const.size <= 64:
                return self.const(x.const.reshape(out.shape), x.type.dtype)
            return self.op("stablehlo.reshape", [x], out)
        if shape_val is None:
            raise AssertionError("a dynamic reshape needs its shape tensor")
        return self.op("stablehlo.dynamic_reshape", [x, shape_val], out)

    def reshape_dims(self, x: Val, dims: Sequence[int | Val]) -> Val:
        """`x` reshaped to `dims`: ints, or run-time sizes as tensor<1xi32> (those dims are `?`)."""
        shape = tuple(d if isinstance(d, int) else None for d in dims)
        return self.reshape(x, shape, None if all(isinstance(d, int) for d in dims) else self.concat_dims(dims))

    def transpose(self, x: Val, perm: Sequence[int]) -> Val:
        if list(perm) == list(range(x.type.rank)):
            return x
        out = x.type.with_shape([x.type.shape[p] for p in perm])
        return self.op("stablehlo.transpose", [x], out, f"permutation = array<i64{_ints(perm)}>")

    def reduce(self, x: Val, axes: Sequence[int], body: str, init: float | int) -> Val:
        """`body` is a StableHLO binary op name (add, maximum, minimum, multiply)."""
        axes = sorted(axes)
        return self.op("stablehlo.reduce", [x, self.scalar(init, x.type.dtype)], out_reduced(x, axes),
                       f"dimensions = array<i64{_ints(axes)}>", self.region(body, x.type.dtype))

    def region(self, body: str, dtype: str) -> str:
        """A reduction body applying the binary op `body` to two scalars."""
        scalar = T((), dtype)
        a, b, r = self.fresh(), self.fresh(), self.fresh()
        return (f'{{\n  ^bb0({a}: {scalar}, {b}: {scalar}):\n'
                  f'    {r} = "stablehlo.{body}"({a}, {b}) : ({scalar}, {scalar}) -> {scalar}\n'
                  f'    "stablehlo.return"({r}) : ({scalar}) -> ()\n  }}')


def factors(dims: Sequence[int | Val]) -> tuple[int, list[Val]]:
    """A product of dims split into its static part and its run-time factors."""
    static, dynamic = 1, []
    for d in dims:
        if isinstance(d, int):
            static *= d
        else:
            dynamic.append(d)
    return static, dynamic


def out_reduced(x: Val, axes: Sequence[int]) -> T:
    return x.type.with_shape([d for i, d in enumerate(x.type.shape) if i not in axes])


def _ints(values: Sequence[int]) -> str:
    return (": " + ", ".join(str(int(v)) for v in values)) if len(values) else ""


def _element_of(array: np.ndarray) -> str:
    for k, v in NUMPY.items():
        if np.dtype(v) == array.dtype:
            return k
    raise TypeError(f"no MLIR element type for numpy {array.dtype}")


def broadcast_shape(a: Sequence[int | None], b: Sequence[int | None]) -> tuple[int | None, ...]:
    rank = max(len(a), len(b))
    a = [1] * (rank - len(a)) + list(a)
    b = [1] * (rank - len(b)) + list(b)
    out: list[int | None] = []
    for x, y in zip(a, b):
        if x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        elif x is None:
            out.append(y)
        else:
            out.append(x)
    return tuple(out)


# -- the TFLite lowering's registry (the driver is shared with Core ML: targets/lowering.py) --

LOWERINGS = Lowerings("TFLite lowering")
lowering = LOWERINGS.register
unsupported = LOWERINGS.unsupported
