"""Lower a whole ONNX graph to one StableHLO ``func.func @main``: the TFLite side of the shared
lowering driver (`targets.lowering.lower_graph`), which walks the graph and calls the registered
family rules; this adapter types values, makes constants and writes the function around the body."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from compiler.errors import ToolchainRefused
from targets.lowering import describe, lower_graph
from targets.stablehlo import families  # noqa: F401  (registers every op family)
from targets.stablehlo.emit import ELEMENT, LOWERINGS, Emitter, T, Val, unsupported


@dataclass
class Lowered:
    text: str
    inputs: list[str]
    outputs: list[str]
    ops: Counter = field(default_factory=Counter)  # ONNX op types lowered


def ir_type(value: ir.Value, node: ir.Node | None = None) -> T:
    if value.dtype not in ELEMENT:
        raise unsupported(node, f"element type {value.dtype} of {value.name!r}")
    if value.shape is None:
        raise ToolchainRefused(
            f"TFLite lowering: {value.name!r}" + (f" (output of {describe(node)})" if node else "")
            + " has no inferred shape; its rank is needed to lower it."
        )
    return T(tuple(d if isinstance(d, int) else None for d in value.shape), ELEMENT[value.dtype])


class Module(Emitter):
    """The emitter as the driver's backend: rules receive it as their `ctx`."""

    lowerings = LOWERINGS
    refusals = ()  # the emitter checks nothing itself: the rules refuse by name
    builder = "the StableHLO emitter"

    def __init__(self) -> None:
        super().__init__()
        self.args: list[str] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.text = ""

    @staticmethod
    def element(dtype: ir.DataType | None) -> str | None:
        return ELEMENT.get(dtype)

    @staticmethod
    def rank(x: Val) -> int:
        return x.type.rank

    @staticmethod
    def element_of(x: Val) -> str:
        return x.quant[1] if x.quant is not None else x.type.dtype  # a Q output: its storage type

    @staticmethod
    def constant_of(x: Val) -> np.ndarray | None:
        return x.const

    @staticmethod
    def out_type(value: ir.Value, node: ir.Node) -> T:
        return ir_type(value, node)

    @contextmanager
    def function(self, inputs: list[ir.Value]) -> Iterator[list[Val]]:
        args = [Val(f"%arg{i}", ir_type(v)) for i, v in enumerate(inputs)]
        self.args = [f"{a.name}: {a.type}" for a in args]
        self.inputs = [v.name for v in inputs]
        yield args

    def returns(self, outputs: list[ir.Value], results: list[Val]) -> None:
        self.outputs = [v.name for v in outputs]
        sig_out = ", ".join(str(r.type) for r in results)
        body = "\n    ".join(self.lines)
        ret = f'"func.return"({", ".join(r.name for r in results)}) : ({sig_out}) -> ()'
        self.text = f"module {{\n  func.func @main({', '.join(self.args)}) -> ({sig_out}) {{\n    {body}\n    {ret}\n  }}\n}}\n"


def lower(model: ir.Model) -> Lowered:
    m = Module()
    ops = lower_graph(model, m)
    return Lowered(m.text, m.inputs, m.outputs, ops)
