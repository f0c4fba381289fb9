"""ONNX IR → a Core ML MIL program, written with coremltools' MIL builder (``mb.*``).

Why by hand: coremltools 9 has no ONNX frontend any more (it converts PyTorch only), and its
torch frontend would start from the PyTorch module, bypassing our IR, passes and precision
decisions. Nothing else installable lowers ONNX to MIL except onnx2coreml (one maintainer,
verified on macOS only with random inputs). So each ONNX op family has a lowering module
(``targets/coreml/families/<family>.py``) registered per (domain, op, opset range) in the shared
registry (`targets.lowering`); the MIL builder checks types and shapes op by op, and
coremltools' own MIL passes, serializer and weight writer do the rest.

Types: MIL has no int64 or float64; ONNX int64 values (shapes, indices, token ids) become int32
and float64 becomes fp32, as coremltools' own frontends do. fp16 values stay fp16: the precision
stage already decided which nodes run in fp16 (range analysis + gate), and the converter is
told not to change precisions (``compute_precision=FLOAT32`` leaves a typed program alone).

Dynamic dims (``batch``, ``sequence``) become MIL symbols; shape arithmetic exported in the graph
(Shape → Gather → Concat → Reshape) is lowered as MIL shape ops, never read from dim names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import onnx_ir as ir

from targets.lowering import Lowerings

LOWERINGS = Lowerings("Core ML lowering")
lowering = LOWERINGS.register
unsupported = LOWERINGS.unsupported

OPSET = "iOS17"  # the MIL opset the lowerings write (coremltools.target.iOS17 = Core ML 7)

# ONNX element type → (MIL dtype name, numpy dtype)
DTYPES: dict[ir.DataType, tuple[str, Any]] = {
    ir.DataType.FLOAT: ("fp32", np.float32), ir.DataType.DOUBLE: ("fp32", np.float32),
    ir.DataType.FLOAT16: ("fp16", np.float16),
    ir.DataType.INT64: ("int32", np.int32), ir.DataType.INT32: ("int32", np.int32),
    ir.DataType.BOOL: ("bool", np.bool_),
}

Value = Union["Var", np.ndarray]  # noqa: F821 - a MIL Var, or a compile-time constant


def mb():
    from coremltools.converters.mil import Builder

    return Builder


def numpy_of(array: np.ndarray) -> np.ndarray:
    """A constant in the dtype MIL holds it (int64 → int32, float64 → fp32)."""
    a = np.asarray(array)
    if a.dtype == np.int64 or a.dtype == np.uint64:
        if a.size and (a.max() > np.iinfo(np.int32).max or a.min() < np.iinfo(np.int32).min):
            a = np.clip(a, np.iinfo(np.int32).min, np.iinfo(np.int32).max)  # INT64_MAX "to the end" in Slice
        return a.astype(np.int32)
    if a.dtype == np.float64:
        return a.astype(np.float32)
    return a


def const(x: Value | None) -> np.ndarray | None:
    """The compile-time value of `x`, if it has one (a constant, or a Var MIL folded)."""
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return x
    val = getattr(x, "val", None)
    return None if val is None else np.asarray(val)


def rank(x: Value) -> int:
    return x.ndim if isinstance(x, np.ndarray) else x.rank


def shape(x: Value) -> tuple[int | None, ...]:
    """Static dims as ints, dynamic ones as None."""
    if isinstance(x, np.ndarray):
        return x.shape
    return tuple(d if isinstance(d, (int, np.integer)) else None for d in x.shape)


def dtype(x: Value) -> str:
    """The MIL dtype name of `x` ("fp32", "fp16", "int32", "bool")."""
    from coremltools.converters.mil.mil import types

    if isinstance(x, np.ndarray):
        return {np.dtype(np.float32): "fp32", np.dtype(np.float16): "fp16", np.dtype(np.int32): "int32",
                np.dtype(np.bool_): "bool"}[numpy_of(x).dtype]
    return types.builtin_to_string(x.dtype)


def np_dtype(name: str):
    return {"fp32": np.float32, "fp16": np.float16, "int32": np.int32, "bool": np.bool_}[name]


def scalar(value: float | int | bool, like: Value) -> np.ndarray:
    """A scalar constant of `like`'s dtype."""
    return np.array(value, np_dtype(dtype(like)))


def dims_of(x: Value) -> Value:
    """The shape of `x` as int32: a constant when static, else a run-time `shape` op."""
    s = shape(x)
    if all(d is not None for d in s):
        return np.array(s, np.int32)
    return mb().shape(x=x)


def mil_name(name: str) -> str:
    """A MIL-safe identifier for an ONNX name (MIL names are C-like; ONNX allows anything)."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if s and not s[0].isdigit() else f"_{s}"


@dataclass
class Lowered:
    program: Any  # coremltools Program
    inputs: list[dict[str, Any]]  # [{"name", "mil_name", "dtype", "shape"}]
    outputs: list[dict[str, Any]]
    ops: Counter = field(default_factory=Counter)  # ONNX op types lowered


def _dims(value: ir.Value, symbols: dict[str, Any]) -> tuple:
    from coremltools.converters.mil.mil import get_new_symbol

    out = []
    for d in value.shape:
        if isinstance(d, int):
            out.append(d)
        else:
            key = str(d) if d is not None and str(d) else f"?{len(symbols)}"
            symbols.setdefault(key, get_new_symbol())
            out.append(symbols[key])
    return tuple(out)


class Program:
    """The Core ML side of the shared lowering driver (`targets.lowering.lower_graph`): MIL
    placeholders for the graph inputs, numpy arrays for constants, named outputs. Rules receive it
    as their `ctx`; they build with `mb()` (coremltools' builder is global inside a function)."""

    lowerings = LOWERINGS
    refusals = (ValueError, TypeError)  # the MIL builder's type / shape checks
    builder = "the MIL builder"

    def __init__(self) -> None:
        self.inputs: list[dict[str, Any]] = []
        self.outputs: list[dict[str, Any]] = []
        self.fn: Any = None
        self._taken: set[str] = set()

    @staticmethod
    def element(onnx_dtype: ir.DataType | None) -> str | None:
        return DTYPES[onnx_dtype][0] if onnx_dtype in DTYPES else None

    @staticmethod
    def rank(x: Value) -> int:
        return rank(x)

    @staticmethod
    def element_of(x: Value) -> str:
        return dtype(x)

    @staticmethod
    def constant_of(x: Value) -> np.ndarray | None:
        return const(x)

    @staticmethod
    def const(array: np.ndarray, element: str) -> np.ndarray:
        return numpy_of(array)  # MIL's dtype: int64 → int32, float64 → fp32

    @staticmethod
    def out_type(value: ir.Value, node: ir.Node) -> ir.Value:
        return value  # the rules read its ONNX element type (Cast, ConstantOfShape)

    def _unique(self, name: str) -> str:
        """A MIL name for an I/O tensor, distinct even where two ONNX names sanitize alike ("a.b", "a_b")."""
        base, k = mil_name(name), 1
        out = base
        while out in self._taken:
            out, k = f"{base}_{k}", k + 1
        self._taken.add(out)
        return out

    @contextmanager
    def function(self, inputs: list[ir.Value]) -> Iterator[list[Any]]:
        import coremltools as ct
        from coremltools.converters.mil.mil import Function, types

        symbols: dict[str, Any] = {}
        placeholders = {}
        for v in inputs:
            name = self._unique(v.name)
            mil_dtype = DTYPES[v.dtype][0]
            dims = _dims(v, symbols)
            # Core ML has no rank-0 inputs or outputs: a scalar travels as shape (1,) ("scalar" in the I/O table)
            placeholders[name] = mb().placeholder(shape=dims or (1,), dtype=types.string_to_builtin(mil_dtype))
            self.inputs.append({"name": v.name, "mil_name": name, "dtype": mil_dtype,
                                "shape": [d if isinstance(d, int) else str(d) for d in v.shape], "scalar": not dims})
        with Function(placeholders, opset_version=getattr(ct.target, OPSET)) as fn:
            self.fn = fn
            yield [mb().squeeze(x=fn.inputs[io["mil_name"]]) if io["scalar"] else fn.inputs[io["mil_name"]]
                   for io in self.inputs]

    def returns(self, outputs: list[ir.Value], results: list[Value]) -> None:
        named = []
        for v, r in zip(outputs, results):
            name = self._unique(v.name)
            scalar_out = rank(r) == 0
            named.append(mb().expand_dims(x=r, axes=[0], name=name) if scalar_out else mb().identity(x=r, name=name))
            self.outputs.append({"name": v.name, "mil_name": name, "dtype": dtype(named[-1]), "scalar": scalar_out})
        self.fn.set_outputs(named)

