"""The pass contract and the pass registry.

A pass is an ``onnx_ir.passes.InPlacePass``: ``call(model) -> PassResult(model, modified)``.
Ours add three class attributes — ``name``, ``description`` (one line, shown by
``compiler passes``) and ``emits`` (op types it may introduce, ``domain::Op`` outside the
default domain) — and may return a `FusionResult` carrying per-rule match counts, which the
pass manager records in the manifest.

A pass whose emitted ops the target does not accept is not run (see `PassContext`): no pass
emits an op its target can't execute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

import onnx_ir as ir

from compiler.registry import Registry


@dataclass
class FusionResult(ir.passes.PassResult):
    """A PassResult with how many times each rule fired."""

    counts: dict[str, int] = field(default_factory=dict)
    declined: list[str] = field(default_factory=list)  # why a fusion that matched was not applied


@dataclass(frozen=True)
class PassContext:
    """What a pass may know about its target: the ops the backend accepts beyond standard ONNX."""

    accepts: frozenset[str] = frozenset()

    def accepts_all(self, ops: Iterable[str]) -> bool:
        return all(op in self.accepts for op in ops)


class Pass(ir.passes.InPlacePass):
    name: ClassVar[str]
    description: ClassVar[str]
    emits: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, ctx: PassContext | None = None):
        super().__init__()
        self.ctx = ctx or PassContext()

    def __repr__(self) -> str:
        return self.name


PASSES: Registry[type[Pass]] = Registry("pass", key=lambda cls: cls.name)
register_pass = PASSES.register
get_pass = PASSES.lookup


def rule_counts(rules, model: ir.Model, names: Callable[[object], str] | None = None) -> dict[str, int]:
    """Apply onnxscript rewrite rules one rule at a time so each rule's match count is known."""
    from onnxscript.rewriter import pattern

    counts: dict[str, int] = {}
    for rule in rules:
        n = pattern.RewriteRuleSet([rule]).apply_to_model(model)
        if n:
            key = names(rule) if names else (getattr(rule, "name", None) or type(rule).__name__)
            counts[key] = counts.get(key, 0) + n
    return counts


def result(model: ir.Model, counts: dict[str, int]) -> FusionResult:
    return FusionResult(model, any(counts.values()), {k: v for k, v in counts.items() if v})


__all__ = ["FusionResult", "Pass", "PassContext", "PASSES", "register_pass", "get_pass", "rule_counts", "result"]
