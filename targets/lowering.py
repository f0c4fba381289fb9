"""The op-lowering registry our hand-written backends share (TFLite via StableHLO, Core ML via
MIL): one lowering function per ONNX (domain, op) and opset range, found per node, with a refusal
that names the node, its op and what the backend does lower."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import onnx_ir as ir

from compiler.errors import ToolchainRefused

CHECKED_UNTIL = 23  # the highest ai.onnx opset the lowerings were written against


@dataclass(frozen=True)
class Rule:
    domain: str
    op: str
    since: int
    until: int  # inclusive; the last opset this lowering was checked against
    fn: Callable[..., Any]


class Lowerings:
    """(domain, op) → rules; `label` begins every refusal ("TFLite lowering", "Core ML lowering")."""

    def __init__(self, label: str):
        self.label = label
        self.rules: dict[tuple[str, str], list[Rule]] = {}

    def register(self, *ops: str, since: int = 1, until: int = CHECKED_UNTIL, domain: str = "") -> Callable:
        def deco(fn):
            for op in ops:
                rules = self.rules.setdefault((domain, op), [])
                if any(r.since <= until and since <= r.until for r in rules):
                    raise RuntimeError(f"{self.label}: {domain or 'ai.onnx'}::{op} registered twice for overlapping opsets")
                rules.append(Rule(domain, op, since, until, fn))
            return fn
        return deco

    def unsupported(self, node: ir.Node | None, what: str) -> ToolchainRefused:
        where = f"{node.op_type} node {node.name!r}: " if node is not None else ""
        return ToolchainRefused(f"{self.label}: {where}{what} is not supported.")

    def known(self) -> list[str]:
        return sorted(f"{d + '::' if d else ''}{o}" for d, o in self.rules)

    def find(self, node: ir.Node, opsets: dict[str, int]) -> Rule:
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        rules = self.rules.get((domain, node.op_type))
        version = opsets.get(domain, opsets.get("ai.onnx", 0))
        defined = _defined_in(node.op_type, version) if domain == "" else version
        if rules:
            # the node's operator is the same in every opset from `defined` to `version`: a rule
            # checked against any of them lowers it (Sqrt at opset 26 is Sqrt-13)
            for r in rules:
                if r.since <= version and defined <= r.until:
                    return r
            spans = ", ".join(f"{r.since}–{r.until}" for r in rules)
            raise self.unsupported(node, f"opset {version} (the lowering covers opsets {spans})")
        raise ToolchainRefused(
            f"{self.label}: {node.op_type} node {node.name!r} ({node.domain or 'ai.onnx'}::{node.op_type}) has no lowering. "
            f"Supported ops: {', '.join(self.known())}."
        )


def _defined_in(op: str, version: int) -> int:
    """The opset in which the definition `op` has at `version` was introduced."""
    import onnx

    try:
        return onnx.defs.get_schema(op, version, "").since_version
    except onnx.defs.SchemaError:
        return version


def opsets(model: ir.Model) -> dict[str, int]:
    """The model's opset imports, ai.onnx under ""."""
    return {("" if d in ("", "ai.onnx") else d): v for d, v in model.opset_imports.items()}


def infer_missing(model: ir.Model) -> ir.Model:
    """Values a pass or the quantizer added without type/shape (Q/DQ outputs) get them from ONNX
    shape inference; a lowering needs every value's rank and element type."""
    if all(o.dtype is not None and o.shape is not None for n in model.graph for o in n.outputs):
        return model
    from onnx_ir.passes.common import ShapeInferencePass

    return ShapeInferencePass()(model).model
