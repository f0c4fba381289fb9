"""The lowering driver our hand-written backends share (TFLite via StableHLO, Core ML via MIL).

Why by hand: neither target has an ONNX frontend we can use (see `targets.stablehlo.emit` and
`targets.coreml.lower`), so both lower our IR op by op. What does not depend on the target lives
here, once: the registry (one rule per ONNX (domain, op) and opset range, found per node, with a
refusal that names the node, its op and what the backend does lower), the graph walk, value
lookup (graph inputs, initializers, produced values, omitted optional inputs and outputs), the
check that each rule gave the rank and element type ONNX inferred, and the refusal messages.
A backend supplies a small adapter (`Backend`): its element types, how to make a constant, what
a rule is told about an output, and how its function opens and returns. ONNX attribute
semantics both backends read are in `targets.onnx_attrs`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
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


_CONVERTER_CASTS = (  # what ONNX Runtime's float16 converter names the casts it inserts
    (re.compile(r"graph_input_cast\d+"), "the Cast of graph input {inp!r} to float16"),
    (re.compile(r"graph_output_cast\d+"), "the Cast of graph output {out!r} back to float32"),
    (re.compile(r".+_cast_to_fp32_node"), "the Cast of {inp!r} to float32 before a node kept in float32"),
    (re.compile(r".+_cast_to_fp16_node"), "the Cast of {out!r} back to float16 after a node kept in float32"),
)


def describe(node: ir.Node) -> str:
    """A node as a refusal names it: by the name the user wrote; a Cast the fp16 conversion
    inserted by what it casts (the user never wrote it); a node without a name of its own
    (empty, or `__N` from NameFixPass) by the op and the tensor it produces."""
    name = node.name or ""
    if node.op_type == "Cast":
        inp = node.inputs[0].name if node.inputs and node.inputs[0] is not None else "?"
        out = node.outputs[0].name if node.outputs else "?"
        for pattern, text in _CONVERTER_CASTS:
            if pattern.fullmatch(name):
                return text.format(inp=inp, out=out) + " (inserted by the fp16 conversion)"
    if not name or re.fullmatch(r"__\d+", name):
        produced = next((o.name for o in node.outputs if o.name), None)
        return f"{node.op_type} node producing {produced!r}" if produced else f"an unnamed {node.op_type} node"
    return f"{node.op_type} node {name!r}"


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
        where = f"{describe(node)}: " if node is not None else ""
        return ToolchainRefused(f"{self.label}: {where}{what} is not supported.")

    def known(self) -> list[str]:
        return sorted(f"{d + '::' if d else ''}{o}" for d, o in self.rules)

    def lowers(self, node: ir.Node, opsets: dict[str, int]) -> bool:
        """Whether a rule takes `node` at these opsets."""
        try:
            self.find(node, opsets)
        except ToolchainRefused:
            return False
        return True

    def find(self, node: ir.Node, opsets: dict[str, int]) -> Rule:
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        rules = self.rules.get((domain, node.op_type))
        version = opsets.get(domain, opsets.get("ai.onnx", 0))
        defined = _defined_in(node.op_type, version, frozenset(node.attributes)) if domain == "" else version
        if rules:
            # the node's operator is the same in every opset from `defined` to `version`: a rule
            # checked against any of them lowers it (Sqrt at opset 26 is Sqrt-13)
            for r in rules:
                if r.since <= version and defined <= r.until:
                    return r
            spans = ", ".join(f"{r.since}–{r.until}" for r in rules)
            raise self.unsupported(node, f"opset {version} (the lowering covers opsets {spans})")
        raise ToolchainRefused(
            f"{self.label}: {describe(node)} ({node.domain or 'ai.onnx'}::{node.op_type}) has no lowering "
            f"(`python -m compiler targets --ops TARGET` lists the {len(self.known())} ops it has)."
        )


class Refused(Exception):
    """A form of an op the lowering does not take, raised where the backend and node are not at hand
    (the shared ONNX helpers, `targets.onnx_attrs`); the driver names both."""


class Backend(Protocol):
    """What one lowering supplies to the shared driver (`lower_graph`). The backend object is also
    the `ctx` every rule receives: ``rule(ctx, node, inputs, outputs)``, `inputs` the lowered
    values (None for an omitted optional input), `outputs` the backend's type of each output
    (None for an omitted optional output); a rule returns one value or one per output."""

    lowerings: Lowerings
    refusals: tuple[type[Exception], ...]  # errors of the backend's builder that mean "this form is not supported"
    builder: str  # who raises them, for the refusal ("the MIL builder")

    def element(self, dtype: ir.DataType | None) -> str | None:
        """The backend's element type for an ONNX one; None where it has none."""

    def rank(self, x: Any) -> int: ...

    def element_of(self, x: Any) -> str: ...

    def constant_of(self, x: Any) -> np.ndarray | None:
        """The compile-time value of a lowered value, if it has one."""

    def const(self, array: np.ndarray, element: str) -> Any:
        """An initializer as a lowered value."""

    def out_type(self, value: ir.Value, node: ir.Node) -> Any:
        """What a rule is told about an output it must produce."""

    def function(self, inputs: list[ir.Value]) -> AbstractContextManager[list[Any]]:
        """Open the lowered function; yields the lowered graph inputs."""

    def returns(self, outputs: list[ir.Value], results: list[Any]) -> None:
        """Close the function on the lowered graph outputs."""


def lower_graph(model: ir.Model, backend: Backend) -> Counter:
    """Lower every node of `model` through `backend`'s rules, in one topological walk; returns
    the ONNX op types lowered. Each produced value must have the rank and element type ONNX
    inferred for it. An op without a rule that ONNX defines as a function is lowered through its
    body (`targets.expand`)."""
    from targets.expand import expand_functions

    versions = opsets(model)
    model = infer_missing(expand_functions(model, lambda n: backend.lowerings.lowers(n, versions), versions.get("", 0)))
    graph = model.graph
    graph.sort()  # the fp16 converter appends its input casts after their readers
    label = backend.lowerings.label
    inputs = [v for v in graph.inputs if v.name not in graph.initializers]
    for v in inputs:
        if backend.element(v.dtype) is None:
            raise ToolchainRefused(f"{label}: graph input {v.name!r} has element type {v.dtype}, which is not supported.")
        if v.shape is None:
            raise ToolchainRefused(f"{label}: graph input {v.name!r} has no known rank; it is needed to lower it.")
    env: dict[str, Any] = {}
    ops: Counter = Counter()

    def value(v: ir.Value | None, user: str) -> Any:
        """The lowered value of `v` (None: an omitted optional input); `user` says who reads it."""
        if v is None or not v.name and v.producer() is None and v.const_value is None:
            return None
        if v.name in env:
            return env[v.name]
        if v.const_value is not None:
            element = backend.element(v.dtype)
            if element is None:
                raise ToolchainRefused(f"{label}: constant {v.name!r} ({user}) has element type {v.dtype}, which is not supported.")
            env[v.name] = backend.const(v.const_value.numpy(), element)
            return env[v.name]
        raise ToolchainRefused(f"{label}: {v.name!r} ({user}) is read but nothing produced it.")

    with backend.function(inputs) as args:
        env.update((v.name, a) for v, a in zip(inputs, args))
        for node in graph:
            rule = backend.lowerings.find(node, versions)
            ins = [value(v, f"input of {describe(node)}") for v in node.inputs]
            outs = [_out_type(backend, o, node) if o.name or o.uses() else None for o in node.outputs]
            try:
                res = rule.fn(backend, node, ins, outs)
            except Refused as e:
                raise backend.lowerings.unsupported(node, str(e)) from e
            except backend.refusals as e:
                raise backend.lowerings.unsupported(
                    node, f"this input combination ({backend.builder} refused it: {str(e).splitlines()[0]})") from e
            for o, r, want in zip(node.outputs, res if isinstance(res, (list, tuple)) else [res], outs):
                if want is not None and r is not None:
                    _check(backend, node, o, r)
                    env[o.name] = r
            ops[node.op_type] += 1
        backend.returns(list(graph.outputs), [value(v, "graph output") for v in graph.outputs])
    return ops


def _out_type(backend: Backend, o: ir.Value, node: ir.Node) -> Any:
    if o.dtype is not None and backend.element(o.dtype) is None:
        raise backend.lowerings.unsupported(node, f"output {o.name!r} of element type {o.dtype}")
    return backend.out_type(o, node)


def _check(backend: Backend, node: ir.Node, o: ir.Value, r: Any) -> None:
    """A rule must give each output the rank and element type ONNX inferred for it; one that does
    not is a fault of the lowering, refused as such (before anything is built on a wrong value)."""
    where = f"{backend.lowerings.label} of {describe(node)}"
    why = None
    if o.shape is not None and backend.rank(r) != len(o.shape):
        why = f"gave rank {backend.rank(r)} for {o.name!r}, ONNX inferred rank {len(o.shape)}"
    elif (want := backend.element(o.dtype)) is not None and backend.element_of(r) != want:
        why = f"gave element type {backend.element_of(r)} for {o.name!r}, expected {want}"
    if why:
        raise ToolchainRefused(f"{where} {why}: a fault of the lowering, not of your model (please report it with the model).")


def _defined_in(op: str, version: int, used_attrs: frozenset[str] = frozenset()) -> int:
    """The opset in which the definition `op` has at `version` was introduced — looking through
    versions that only widened its element types (opsets 24 and 25 added float8e8m0 and 2-bit
    integers to Cast, Reshape, Transpose, Pad…, and Cast a `round_mode` for float8 that a node not
    setting it does not use): a rule checked against the earlier definition lowers them, and a
    value of a type the backend lacks is refused by the driver, by name."""
    import onnx

    try:
        schema = onnx.defs.get_schema(op, version, "")
    except onnx.defs.SchemaError:
        return version
    # only past CHECKED_UNTIL: a schema diff cannot see a changed meaning under the same names
    # (Softmax-13's axis), and versions 24–25 were checked to widen types only
    while schema.since_version > CHECKED_UNTIL:
        try:
            prev = onnx.defs.get_schema(op, schema.since_version - 1, "")
        except onnx.defs.SchemaError:
            break
        if not _widens_types_only(prev, schema, used_attrs):
            break
        schema = prev
    return schema.since_version


def _widens_types_only(old, new, used_attrs: frozenset[str]) -> bool:
    if [i.name for i in old.inputs] != [i.name for i in new.inputs] or [o.name for o in old.outputs] != [o.name for o in new.outputs]:
        return False
    if not set(old.attributes) <= set(new.attributes) or (set(new.attributes) - set(old.attributes)) & used_attrs:
        return False
    was = {t.type_param_str: set(t.allowed_type_strs) for t in old.type_constraints}
    now = {t.type_param_str: set(t.allowed_type_strs) for t in new.type_constraints}
    return was.keys() == now.keys() and all(was[k] <= now[k] for k in was)


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
