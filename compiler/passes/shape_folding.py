"""Shape subgraphs over static or shared dims, folded to simpler forms.

Written here (no library rule covers it): legacy exports flatten with
``Reshape(x, Concat(Unsqueeze(Gather(Shape(y), 0)), [-1]))`` — "keep y's batch, flatten the
rest" — where y is the *graph input* and x is a feature map derived from it. When x and y
provably share dim 0 (the same static size, or the same named symbolic dim after shape
inference) this is exactly

    Reshape(x, [batch(y), -1]) → Flatten(x, axis=1)

and the whole Shape→Gather→Unsqueeze→Concat chain dies. onnxscript's ExtractDim rules
(``Shape(x)[i]`` → ``Shape(x, start=i, end=i+1)``) are applied too; static Shape reads are
folded by the constant folder once shapes are inferred.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import pattern
from onnxscript.rewriter.ort_fusions import shape_optimization

from compiler.passes._adapters import RulesPass
from compiler.passes.base import register_pass


def _const(v: ir.Value | None) -> np.ndarray | None:
    if v is None or v.const_value is None:
        return None
    return v.const_value.numpy()


def _same_dim0(x: ir.Value, y: ir.Value) -> bool:
    if x.shape is None or y.shape is None or len(x.shape) < 2 or len(y.shape) < 1:
        return False
    a, b = x.shape[0], y.shape[0]
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return isinstance(a, ir.SymbolicDim) and isinstance(b, ir.SymbolicDim) and a.value is not None and a.value == b.value


class BatchFlatten(pattern.RewriteRuleClassBase):
    """Reshape(x, Concat(Unsqueeze(Gather(Shape(y), 0), [0]), [-1])) → Flatten(x, axis=1)."""

    def pattern(self, op, x, y, index, axes, rest):
        dim = op.Gather(op.Shape(y), index, axis=0)
        target = op.Concat(op.Unsqueeze(dim, axes), rest, axis=0)
        return op.Reshape(x, target)

    def check(self, context, x, y, index, axes, rest, **_):
        check = pattern.MatchResult()
        i, a, r = _const(index), _const(axes), _const(rest)
        if i is None or i.size != 1 or int(i.reshape(-1)[0]) != 0:
            return check.fail("gathers a dim other than 0")
        if a is None or a.reshape(-1).tolist() != [0]:
            return check.fail("Unsqueeze axes are not [0]")
        if r is None or r.reshape(-1).tolist() != [-1]:
            return check.fail("the rest of the target shape is not [-1]")
        if not _same_dim0(x, y):
            return check.fail(f"dim 0 of {x.name} ({x.shape}) is not provably dim 0 of {y.name} ({y.shape})")
        return check

    def rewrite(self, op, x, **_):
        return op.Flatten(x, axis=1)


batch_flatten_rule = BatchFlatten.rule()


@register_pass
class ShapeFolding(RulesPass):
    name = "shape_folding"
    description = "fold shape subgraphs on shared/static dims (Reshape-by-batch → Flatten, Shape slicing)"

    def rules(self):
        none = frozenset()
        return [
            ("batch_flatten", batch_flatten_rule, none),
            *[("extract_dim", r, none) for r in shape_optimization.rules.rules],
        ]
