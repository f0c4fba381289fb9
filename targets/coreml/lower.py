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
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import onnx_ir as ir

from compiler.errors import ToolchainRefused
from targets.lowering import Lowerings, infer_missing, opsets

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

    if value.shape is None:
        raise ToolchainRefused(f"Core ML lowering: graph input {value.name!r} has no known rank; it is needed to lower it.")
    out = []
    for d in value.shape:
        if isinstance(d, int):
            out.append(d)
        else:
            key = str(d) if d is not None and str(d) else f"?{len(symbols)}"
            symbols.setdefault(key, get_new_symbol())
            out.append(symbols[key])
    return tuple(out)


def lower(model: ir.Model) -> Lowered:
    """The model as a one-function MIL program ("main")."""
    import coremltools as ct
    from coremltools.converters.mil.mil import Function, Program, types

    from targets.coreml import families  # noqa: F401  (registers every op family)

    model = infer_missing(model)
    graph = model.graph
    graph.sort()  # the fp16 converter appends its input casts after their readers
    versions = opsets(model)
    inputs = [v for v in graph.inputs if v.name not in graph.initializers]
    symbols: dict[str, Any] = {}
    placeholders = {}
    taken: set[str] = set()

    def unique(name: str) -> str:
        """A MIL name for an I/O tensor, distinct even where two ONNX names sanitize alike ("a.b", "a_b")."""
        base, k = mil_name(name), 1
        out = base
        while out in taken:
            out, k = f"{base}_{k}", k + 1
        taken.add(out)
        return out

    io_in = []
    for v in inputs:
        if v.dtype not in DTYPES:
            raise ToolchainRefused(f"Core ML lowering: graph input {v.name!r} has element type {v.dtype}, which Core ML inputs do not take.")
        name = unique(v.name)
        mil_dtype = DTYPES[v.dtype][0]
        dims = _dims(v, symbols)
        # Core ML has no rank-0 inputs or outputs: a scalar travels as shape (1,) ("scalar" in the I/O table)
        placeholders[name] = mb().placeholder(shape=dims or (1,), dtype=types.string_to_builtin(mil_dtype))
        io_in.append({"name": v.name, "mil_name": name, "dtype": mil_dtype,
                      "shape": [d if isinstance(d, int) else str(d) for d in v.shape], "scalar": not dims})
    env: dict[str, Value] = {}
    ops: Counter = Counter()

    def value(v: ir.Value | None, user: str) -> Value | None:
        if v is None or not v.name and v.producer() is None and v.const_value is None:
            return None
        if v.name in env:
            return env[v.name]
        if v.const_value is not None:
            if v.dtype not in DTYPES:
                raise ToolchainRefused(f"Core ML lowering: constant {v.name!r} ({user}) has element type {v.dtype}, which MIL does not hold.")
            env[v.name] = numpy_of(v.const_value.numpy())
            return env[v.name]
        raise ToolchainRefused(f"Core ML lowering: {v.name!r} ({user}) is read but nothing produced it.")

    with Function(placeholders, opset_version=getattr(ct.target, OPSET)) as fn:
        for v, io in zip(inputs, io_in):
            env[v.name] = mb().squeeze(x=fn.inputs[io["mil_name"]]) if io["scalar"] else fn.inputs[io["mil_name"]]
        for node in graph:
            rule = LOWERINGS.find(node, versions)
            for o in node.outputs:
                if (o.name or o.uses()) and o.dtype is not None and o.dtype not in DTYPES:
                    raise unsupported(node, f"output {o.name!r} of element type {o.dtype}")
            ins = [value(v, f"input of {node.op_type} node {node.name!r}") for v in node.inputs]
            try:
                res = rule.fn(node, ins, list(node.outputs))
            except (ValueError, TypeError) as e:  # the MIL builder's type / shape checks
                raise unsupported(node, f"this input combination (the MIL builder refused it: {str(e).splitlines()[0]})") from e
            res = [res] if not isinstance(res, (list, tuple)) else list(res)
            for o, r in zip(node.outputs, res):
                if r is None:
                    continue
                _check(node, o, r)
                env[o.name] = r
            ops[node.op_type] += 1
        results, io_out = [], []
        for v in graph.outputs:
            r = value(v, "graph output")
            name = unique(v.name)
            scalar_out = rank(r) == 0
            r = mb().expand_dims(x=r, axes=[0], name=name) if scalar_out else mb().identity(x=r, name=name)
            results.append(r)
            io_out.append({"name": v.name, "mil_name": name, "dtype": dtype(r), "scalar": scalar_out})
        fn.set_outputs(results)
    program = Program()
    program.add_function("main", fn)
    return Lowered(program, io_in, io_out, ops)


def _check(node: ir.Node, o: ir.Value, r: Value) -> None:
    """A lowering must give each output the rank and element type ONNX inferred for it."""
    if o.shape is not None and rank(r) != len(o.shape):
        raise AssertionError(f"Core ML lowering of {node.op_type} node {node.name!r} gave rank {rank(r)} for {o.name!r}, "
                             f"ONNX inferred rank {len(o.shape)}")
    if o.dtype in DTYPES and dtype(r) != DTYPES[o.dtype][0]:
        raise AssertionError(f"Core ML lowering of {node.op_type} node {node.name!r} gave {dtype(r)} for {o.name!r}, "
                             f"expected {DTYPES[o.dtype][0]}")
