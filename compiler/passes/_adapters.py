"""Adapters that make onnx-ir passes and onnxscript rewrite rules into our `Pass` contract."""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir

from compiler.passes.base import FusionResult, Pass, result, rule_counts


class WrappedPass(Pass):
    """A pass that delegates to an existing onnx-ir / onnxscript pass (`make()`)."""

    def make(self) -> ir.passes.PassBase:  # pragma: no cover - abstract
        raise NotImplementedError

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        res = self.make()(model)
        return ir.passes.PassResult(res.model, res.modified)


class RulesPass(Pass):
    """A pass built from onnxscript rewrite rules; each rule's match count is recorded.

    `rules()` yields ``(count_key, rule, required_ops)``; a rule whose required ops the target
    does not accept is left out.
    """

    def rules(self) -> Sequence[tuple[str, object, frozenset[str]]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def call(self, model: ir.Model) -> FusionResult:
        counts: dict[str, int] = {}
        for key, rule, needs in self.rules():
            if self.ctx.accepts_all(needs):
                for k, v in rule_counts([rule], model, names=lambda _r, key=key: key).items():
                    counts[k] = counts.get(k, 0) + v
        return result(model, counts)
