"""Inference no-ops: Identity (onnx-ir IdentityElimination), Dropout in inference mode or with
ratio 0, and arithmetic identities (onnxscript no-op rules):

    Identity(x) → x        Dropout(x, ratio=0 | training_mode=False) → x
    x + 0 → x   x - 0 → x   x * 1 → x   x / 1 → x
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import IdentityEliminationPass
from onnxscript.rewriter.rules.common import _no_op

from compiler.passes.base import Pass, register_pass, result, rule_counts


@register_pass
class IdentityDropout(Pass):
    name = "identity_dropout"
    description = "remove Identity, inference Dropout and x+0 / x*1 style no-ops"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        before = len(model.graph)
        IdentityEliminationPass()(model)
        counts = {"identity": before - len(model.graph)}
        counts.update(rule_counts(_no_op.rules, model, names=lambda r: "dropout" if "ropout" in str(r) else "arith_no_op"))
        return result(model, counts)
