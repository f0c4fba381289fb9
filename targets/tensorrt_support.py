"""What TensorRT's ONNX parser accepts, checked on a host without TensorRT.

The data is onnx-tensorrt's own operator support matrix (``docs/operators.md``), vendored with its
licence and provenance in ``targets/vendor/onnx_tensorrt/`` and parsed here: the header gives the
TensorRT version, the opset range and the data types the parser knows; each table row gives an
operator, whether it is supported, the types of its data tensor, and restrictions in prose.

Written by hand because no library exposes this table (onnx-tensorrt ships it only as markdown,
and its parser is C++ that needs TensorRT to run). The restriction sentences are matched against
a few patterns (an input "must be an initializer", "must be 0", an attribute "must be N" or "is not
supported", "2D or 3D pooling only", an output "unsupported", "Supported … modes: …"); every
sentence no pattern understands is reported by :func:`analyse` (``unchecked``), for the manifest, rather than
silently dropped.

"Supported Types" is read as the types of the operator's data tensor: input 0 (output 0 for an
operator without inputs, and ConstantOfShape, whose input is a shape), plus output 0 for Cast and
CastLike, whose target type matters.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import onnx
import onnx_ir as ir

VENDOR = Path(__file__).parent / "vendor" / "onnx_tensorrt"

# The table's type names → ONNX data types. "INF64" is a typo in the upstream table
# (ConstantOfShape's row at the vendored commit) for INT64.
_TYPE_TOKENS: Mapping[str, tuple[ir.DataType, ...]] = MappingProxyType({
    "DOUBLE": (ir.DataType.DOUBLE,),
    "FP32": (ir.DataType.FLOAT,), "FLOAT32": (ir.DataType.FLOAT,),
    "FP16": (ir.DataType.FLOAT16,), "FLOAT16": (ir.DataType.FLOAT16,),
    "BF16": (ir.DataType.BFLOAT16,), "BFLOAT16": (ir.DataType.BFLOAT16,),
    "FP8": (ir.DataType.FLOAT8E4M3FN,),
    "INT4": (ir.DataType.INT4,), "INT8": (ir.DataType.INT8,), "UINT8": (ir.DataType.UINT8,),
    "INT32": (ir.DataType.INT32,), "INT64": (ir.DataType.INT64,), "INF64": (ir.DataType.INT64,),
    "BOOL": (ir.DataType.BOOL,),
})


@dataclass(frozen=True)
class OpSupport:
    op: str
    supported: bool
    types: frozenset[ir.DataType]
    restrictions: tuple[str, ...]  # one sentence each, as the table words them


@dataclass(frozen=True)
class OperatorTable:
    tensorrt: str  # the version the table's header names
    opsets: tuple[int, int]  # inclusive
    dtypes: frozenset[ir.DataType]  # every type the parser knows
    ops: Mapping[str, OpSupport]
    source: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, str]:
        return {
            "describes": f"TensorRT {self.tensorrt}, opsets {self.opsets[0]}–{self.opsets[1]}",
            "source": f"{self.source.get('repository', '?')} {self.source.get('path', '?')} @ "
                      f"{self.source.get('ref', '?')} ({self.source.get('commit', '?')[:12]})",
        }


def _types(cell: str, where: str) -> frozenset[ir.DataType]:
    out: set[ir.DataType] = set()
    for tok in (t.strip() for t in cell.replace(" and ", ",").split(",")):
        if not tok:
            continue
        if tok not in _TYPE_TOKENS:
            raise ValueError(f"{where}: unknown type {tok!r} in the TensorRT operator table; add it to _TYPE_TOKENS")
        out.update(_TYPE_TOKENS[tok])
    return frozenset(out)


def _sentences(cell: str) -> tuple[str, ...]:
    parts = re.split(r"<br\s*/?>|(?<=\.)\s+(?=[A-Z`])", cell)
    return tuple(p.strip() for p in parts if p.strip())


def parse(text: str, source: Mapping[str, str] | None = None) -> OperatorTable:
    head = re.search(r"TensorRT ([\d.]+) supports operators "
                     r"(?:in the inclusive range of opset (\d+) to opset (\d+)|up to [Oo]pset (\d+))", text)
    if head is None:
        raise ValueError("the TensorRT operator table has no 'TensorRT X supports operators …' header")
    version = head.group(1)
    opsets = (int(head.group(2)), int(head.group(3))) if head.group(2) else (1, int(head.group(4)))
    known = re.search(r"supports the following ONNX data types: ([^\n]+)", text)
    if known is None:
        raise ValueError("the TensorRT operator table does not list the ONNX data types it supports")
    dtypes = _types(known.group(1), "header")
    ops: dict[str, OpSupport] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) < 2 or cells[1] not in ("Y", "N"):
            continue  # the header row, its rule, prose
        op = cells[0]
        ops[op] = OpSupport(op, cells[1] == "Y", _types(cells[2], op) if len(cells) > 2 else frozenset(),
                            _sentences(cells[3]) if len(cells) > 3 else ())
    if not ops:
        raise ValueError("the TensorRT operator table has no rows")
    return OperatorTable(version, opsets, dtypes, MappingProxyType(ops), MappingProxyType(dict(source or {})))


@functools.cache
def table() -> OperatorTable:
    """The vendored table (see ``targets/vendor/onnx_tensorrt/SOURCE.toml``)."""
    source = tomllib.loads((VENDOR / "SOURCE.toml").read_text())
    return parse((VENDOR / "operators.md").read_text(), {k: str(v) for k, v in source.items()})


@dataclass(frozen=True)
class Incompatibility:
    node: str
    op: str
    why: str

    def __str__(self) -> str:
        return f"node {self.node!r} ({self.op}): {self.why}"


# ---------------------------------------------------------------- restriction checks
# Each pattern turns one restriction sentence into a check: (node, schema, match) -> why or None.
# A pattern that matches but names something the operator's schema does not have (the table's
# `is_traning` for Dropout's training_mode input) leaves the sentence unchecked.

Check = Callable[[ir.Node, "onnx.defs.OpSchema", re.Match], "str | None | type[NotImplemented]"]


def _input(node: ir.Node, schema, name: str) -> tuple[bool, ir.Value | None]:
    names = [i.name for i in schema.inputs]
    if name not in names:
        return False, None
    k = names.index(name)
    return True, node.inputs[k] if k < len(node.inputs) else None


def _const(v: ir.Value) -> np.ndarray | None:
    if v.const_value is not None:
        return v.const_value.numpy()
    p = v.producer()
    if p is not None and p.op_type == "Constant" and "value" in p.attributes:
        return p.attributes["value"].as_tensor().numpy()
    return None


def _attr(node: ir.Node, schema, name: str):
    if name not in schema.attributes:
        return NotImplemented
    a = node.attributes.get(name)
    if a is not None:
        return a.value
    d = schema.attributes[name].default_value
    return onnx.helper.get_attribute_value(d) if d.name else None


def _must_be_constant(node, schema, m):
    has, v = _input(node, schema, m.group(1))
    if not has:
        return NotImplemented
    if v is None or _const(v) is not None:
        return None
    return f"input {m.group(1)!r} must be an initializer (is computed at run time)"


def _must_equal(node, schema, m):
    name, want = m.group(1), m.group(2)
    want_num = 0 if want == "zero" else int(want)
    has, v = _input(node, schema, name)
    if has:
        if v is None:
            return None
        c = _const(v)
        if c is None:
            return f"input {name!r} must be the constant {want} (is computed at run time)"
        return None if np.all(c == want_num) else f"input {name!r} must be {want}"
    value = _attr(node, schema, name)
    if value is NotImplemented:
        return NotImplemented
    return None if value is None or value == want_num else f"attribute {name}={value!r}, TensorRT needs {want}"


def _ones(node, schema, m):
    value = _attr(node, schema, m.group(1))
    if value is NotImplemented:
        return NotImplemented
    return None if not value or all(int(x) == 1 for x in value) else f"attribute {m.group(1)}={list(value)} must be empty or all ones"


def _not_supported(node, schema, m):
    name = m.group(1)
    value = _attr(node, schema, name)
    if value is NotImplemented:
        return NotImplemented
    d = schema.attributes[name].default_value
    default = onnx.helper.get_attribute_value(d) if d.name else None
    return None if name not in node.attributes or value == default else f"attribute {name}={value!r} is not supported"


def _pool_rank(node, schema, m):
    ranks = {int(m.group(1)) + 2, int(m.group(2)) + 2}
    x = node.inputs[0]
    if x is None or x.shape is None:
        return None
    return None if len(x.shape) in ranks else f"input of rank {len(x.shape)}: {m.group(1)}D or {m.group(2)}D pooling only"


def _output_unused(node, schema, m):
    names = [o.name for o in schema.outputs]
    if m.group(1) not in names:
        return NotImplemented
    k = names.index(m.group(1))
    out = node.outputs[k] if k < len(node.outputs) else None
    if out is None or not (out.uses() or out.is_graph_output()):
        return None
    return f"output {m.group(1)!r} is used; TensorRT does not produce it"


def _only_first_output(node, schema, m):
    used = [o.name for o in node.outputs[1:] if o is not None and (o.uses() or o.is_graph_output())]
    return None if not used else f"only the first output is supported; {used} are used"


# "Supported resize transformation modes: ..." etc.: the words before "modes" name the attribute.
_MODE_ATTRS = {"resize transformation": "coordinate_transformation_mode", "resize": "mode", "nearest": "nearest_mode"}


def _modes(node, schema, m):
    attr = _MODE_ATTRS.get(m.group(1).lower())
    value = _attr(node, schema, attr) if attr else NotImplemented
    if value is NotImplemented:
        return NotImplemented
    allowed = re.findall(r"`(\w+)`", m.group(2))
    value = value.decode() if isinstance(value, bytes) else value
    return None if value is None or value in allowed else f"{attr}={value!r} is not among TensorRT's {allowed}"


_PATTERNS: tuple[tuple[re.Pattern, Check], ...] = tuple((re.compile(p), f) for p, f in (
    (r"`(\w+)`(?: input)? must be (?:an initializer|a constant tensor|a build-time constant)", _must_be_constant),
    (r"`(\w+)`(?: attribute)? must be (zero|\d+)\b", _must_equal),
    (r"`(\w+)` must be empty or all ones", _ones),
    (r"`(\w+)` is not supported", _not_supported),
    (r"(\d)D or (\d)D [Pp]ooling only", _pool_rank),
    (r"`(\w+)` output tensor unsupported", _output_unused),
    (r"Only the first output", _only_first_output),
    (r"Supported ([\w ]+?) modes?: (.+)", _modes),
))


def _schema(node: ir.Node, opset: int):
    try:
        return onnx.defs.get_schema(node.op_type, opset, node.domain or "")
    except onnx.defs.SchemaError:
        return None


def _restrictions(node: ir.Node, row: OpSupport, opset: int) -> tuple[list[str], list[str]]:
    """(violations, sentences not checked) of one node."""
    schema = _schema(node, opset)
    bad, unchecked = [], []
    for sentence in row.restrictions:
        results = []
        for pattern, check_one in _PATTERNS if schema is not None else ():
            m = pattern.search(sentence)
            if m and (r := check_one(node, schema, m)) is not NotImplemented:
                results.append(r)
        if not results:
            unchecked.append(sentence)
        bad += [r for r in results if r]
    return bad, unchecked


def _data_tensors(node: ir.Node) -> list[ir.Value]:
    ins = [v for v in node.inputs[:1] if v is not None]
    if not ins or node.op_type == "ConstantOfShape":
        ins = [v for v in node.outputs[:1] if v is not None]
    if node.op_type in ("Cast", "CastLike"):
        ins += [v for v in node.outputs[:1] if v is not None]
    return ins


def _table_for(trt_version: str) -> OperatorTable:
    t = table()
    if trt_version.split(".")[0] != t.tensorrt.split(".")[0]:
        from compiler.errors import BadInput

        raise BadInput(
            f"the vendored TensorRT operator table describes TensorRT {t.tensorrt}; the profile pins TensorRT "
            f"{trt_version}, a different major version. Vendor the matching table (targets/vendor/onnx_tensorrt/SOURCE.toml)."
        )
    return t


@dataclass(frozen=True)
class Analysis:
    problems: list[Incompatibility]  # what TensorRT's ONNX parser would reject, per node
    unchecked: dict[str, list[str]]  # per op in the model: restriction sentences no pattern checks


def analyse(model: ir.Model, trt_version: str = "10") -> Analysis:
    """Every node of `model` against the table, in one pass."""
    t = _table_for(trt_version)
    opset = model.opset_imports.get("", 1)
    problems: list[Incompatibility] = []
    unchecked: dict[str, list[str]] = {}
    for node in model.graph.all_nodes():
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        name = node.name or "(unnamed)"
        if node.domain not in ("", "ai.onnx"):
            problems.append(Incompatibility(name, op, f"domain {node.domain!r} is not parsed by TensorRT {trt_version} without a plugin"))
            continue
        row = t.ops.get(node.op_type)
        if row is None or not row.supported:
            listed = "not in" if row is None else "marked unsupported in"
            problems.append(Incompatibility(name, op, f"{listed} TensorRT {t.tensorrt}'s ONNX operator support matrix"))
            continue
        for v in (*node.inputs, *node.outputs):
            if v is not None and v.dtype is not None and v.dtype not in t.dtypes:
                problems.append(Incompatibility(name, op, f"tensor {v.name!r} has dtype {v.dtype.name}, which TensorRT does not support"))
                break
        else:
            for v in _data_tensors(node):
                if v.dtype is not None and row.types and v.dtype not in row.types:
                    allowed = ", ".join(sorted(d.name for d in row.types))
                    reason = f"tensor {v.name!r} has dtype {v.dtype.name}; TensorRT's {op} takes {allowed}"
                    problems.append(Incompatibility(name, op, reason))
                    break
        bad, left = _restrictions(node, row, opset)
        problems += [Incompatibility(name, op, why) for why in bad]
        for sentence in left:
            if sentence not in unchecked.setdefault(node.op_type, []):
                unchecked[node.op_type].append(sentence)
        if node.op_type == "Mod" and node.attributes.get("fmod") is not None and node.attributes["fmod"].as_int() == 0:
            out = node.outputs[0]  # onnx-tensorrt's importer, not its table: float Mod needs fmod=1
            if out.dtype is not None and out.dtype.is_floating_point():
                problems.append(Incompatibility(name, op, "floating-point Mod requires fmod=1 in TensorRT"))
    return Analysis(problems, {k: v for k, v in sorted(unchecked.items()) if v})


def check(model: ir.Model, trt_version: str = "10") -> list[Incompatibility]:
    """Every node of `model` that TensorRT's ONNX parser would reject, with the reason."""
    return analyse(model, trt_version).problems


def opset_note(model: ir.Model, trt_version: str = "10") -> str | None:
    t = _table_for(trt_version)
    opset = model.opset_imports.get("", None)
    if opset is not None and not t.opsets[0] <= opset <= t.opsets[1]:
        return f"the model imports opset {opset}; TensorRT {t.tensorrt}'s table covers opsets {t.opsets[0]}–{t.opsets[1]}"
    return None
