"""Lower a whole ONNX graph to one StableHLO ``func.func @main`` through the registered lowerings."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import onnx_ir as ir

from compiler.errors import ToolchainRefused
from targets.stablehlo import families  # noqa: F401  (registers every op family)
from targets.lowering import infer_missing, opsets
from targets.stablehlo.emit import ELEMENT, Emitter, Val, find_rule, ir_type


@dataclass
class Lowered:
    text: str
    inputs: list[str]
    outputs: list[str]
    ops: Counter = field(default_factory=Counter)  # ONNX op types lowered


def lower(model: ir.Model) -> Lowered:
    model = infer_missing(model)
    graph = model.graph
    e = Emitter()
    versions = opsets(model)
    args = []
    inputs = [v for v in graph.inputs if v.name not in graph.initializers]
    for i, v in enumerate(inputs):
        t = ir_type(v)
        name = f"%arg{i}"
        e.env[v.name] = Val(name, t)
        args.append(f"{name}: {t}")
    ops: Counter = Counter()

    def value(v: ir.Value | None, user: str) -> Val | None:
        """The emitted value of `v`; `user` says who reads it (for messages)."""
        if v is None or not v.name and v.producer() is None and v.const_value is None:
            return None
        if v.name in e.env:
            return e.env[v.name]
        if v.const_value is not None:
            if v.dtype not in ELEMENT:
                raise ToolchainRefused(f"TFLite lowering: constant {v.name!r} ({user}) has element type {v.dtype}, "
                                       "which is not supported.")
            c = e.const(v.const_value.numpy(), ELEMENT[v.dtype])
            e.env[v.name] = c
            return c
        raise ToolchainRefused(f"TFLite lowering: {v.name!r} ({user}) is read but nothing produced it.")

    for node in graph:
        rule = find_rule(node, versions)
        ins = [value(v, f"input of {node.op_type} node {node.name!r}") for v in node.inputs]
        outs = [ir_type(o, node) if o.name or o.uses() else None for o in node.outputs]  # None: an omitted optional output
        res = rule.fn(e, node, ins, outs)
        res = [res] if isinstance(res, Val) else list(res)
        for o, r, want in zip(node.outputs, res, outs):
            if want is None:
                continue
            dtype = r.quant[1] if r.quant is not None else r.type.dtype
            if r.type.rank != want.rank or dtype != want.dtype:
                raise AssertionError(f"lowering of {node.op_type} node {node.name!r} gave {r.type} for {o.name!r}, "
                                     f"expected {want}")
            e.env[o.name] = r
        ops[node.op_type] += 1

    results = [value(v, "graph output") for v in graph.outputs]  # a node's, a graph input, or a constant
    sig_out = ", ".join(str(r.type) for r in results)
    body = "\n    ".join(e.lines)
    ret = f'"func.return"({", ".join(r.name for r in results)}) : ({sig_out}) -> ()'
    text = (f"module {{\n  func.func @main({', '.join(args)}) -> ({sig_out}) {{\n    {body}\n    {ret}\n  }}\n}}\n")
    return Lowered(text, [v.name for v in inputs], [v.name for v in graph.outputs], ops)
