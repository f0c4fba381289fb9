"""Layout no-ops and cancellations (onnxscript basic rules):

    Transpose(Transpose(x, p), q) → Transpose(x, p∘q), or x when p∘q = id
    Transpose(x, id) → x          Reshape(Reshape(x, s1), s2) → Reshape(x, s2)
    Unsqueeze(Unsqueeze(x, a), b) → Unsqueeze(x, a ∪ b)   Expand(x, s) → x when broadcasting is a no-op
    Slice chains collapsed where provably equivalent
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import IdentityEliminationPass
from onnxscript.rewriter.rules.common import (
    collapse_slice2_rule,
    collapse_slice_rule,
    no_op_expand_rule,
    no_op_transpose_rule,
    reshape_reshape_rule,
    squeeze_reshape_1d_rule,
    transpose_transpose_rule,
    unsqueeze_unsqueeze_rule,
)

from compiler.passes._adapters import RulesPass
from compiler.passes.base import FusionResult, register_pass


@register_pass
class TransposeReshape(RulesPass):
    name = "transpose_reshape"
    description = "cancel/merge Transpose, Reshape, Unsqueeze, Expand and Slice chains"

    def rules(self):
        none = frozenset()
        return [
            ("transpose_transpose", transpose_transpose_rule, none),
            ("no_op_transpose", no_op_transpose_rule, none),
            ("reshape_reshape", reshape_reshape_rule, none),
            ("unsqueeze_unsqueeze", unsqueeze_unsqueeze_rule, none),
            ("squeeze_reshape_1d", squeeze_reshape_1d_rule, none),
            ("no_op_expand", no_op_expand_rule, none),
            ("collapse_slice", collapse_slice_rule, none),
            ("collapse_slice2", collapse_slice2_rule, none),
        ]

    def call(self, model: ir.Model) -> FusionResult:
        res = super().call(model)
        if res.modified:  # cancelled pairs are rewritten to Identity; drop those here
            IdentityEliminationPass()(model)
        return res
