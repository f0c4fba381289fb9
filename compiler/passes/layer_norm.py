"""LayerNormalization fusion (onnxscript rules), then — where the target accepts ORT's contrib
op — residual Add + LayerNorm into SkipLayerNormalization:

    Y = (X − mean(X)) / sqrt(var(X) + ε) · γ + β   → LayerNormalization(X, γ, β, ε)   (opset ≥ 17)
    LayerNormalization(A + B, γ, β)                 → com.microsoft::SkipLayerNormalization(A, B, γ, β)

Runs in the fuse phase: the rules match ε and the exponent 2 by value, so constants must be
folded (cleanup phase) first.
"""

from __future__ import annotations

import onnx_ir as ir
from onnxscript.rewriter.ort_fusions import skip_normalization
from onnxscript.rewriter.rules.fusion import _layer_norm

from compiler import ir as irh
from compiler.passes._adapters import RulesPass
from compiler.passes.base import FusionResult, register_pass


@register_pass
class LayerNorm(RulesPass):
    name = "layer_norm"
    description = "fuse decomposed LayerNorm → LayerNormalization; Add+LayerNorm → SkipLayerNormalization (ORT)"

    def rules(self):
        ln = frozenset({"LayerNormalization"})
        skip = frozenset({"com.microsoft::SkipLayerNormalization"})
        return [
            *[("layer_norm", r, ln) for r in _layer_norm.layer_normalization_rules],
            *[("skip_layer_norm", r, skip) for r in skip_normalization.skip_layer_normalization_ruleset.rules],
        ]

    def call(self, model: ir.Model) -> FusionResult:
        if irh.opset(model) < 17:  # LayerNormalization exists from opset 17
            return FusionResult(model, False, {})
        return super().call(model)
