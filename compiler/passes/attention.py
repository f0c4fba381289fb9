"""Attention fusion into ONNX Runtime's contrib ops, with onnxscript's ORT fusion rules in the
order onnxscript's own ``fuse_xformers`` applies them:

    softmax(Q·Kᵀ·s + mask)·V                     → SDPA (an internal intermediate)
    SDPA over per-head Reshape/Transpose of Q,K,V → com.microsoft::MultiHeadAttention
    MHA with bias and the packed QKV projection   → com.microsoft::Attention

Any SDPA left unconsumed is rewritten to MultiHeadAttention, and intermediate functions are
inlined, so the result holds only ops ORT executes.

Precondition check: onnxscript's MHA rule takes the final Reshape of the merged heads as the
attention output without checking its target shape; on GPT-2 (whose Conv1D flattens to 2-D
before its Gemm) the fused output is rank 3 where the Gemm needs rank 2, and ORT rejects the
graph. So the fusion runs on a clone first, and is applied only if ONNX Runtime — the only
backend that accepts these ops — loads the fused clone at the optimization level it will run
with; otherwise the pass declines, with ORT's reason in the manifest.
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass
from onnxscript import optimizer
from onnxscript.rewriter.ort_fusions import attention, mha, mha_bias, mha_scale, sdpa, sdpa_via_mha

from compiler import ortsession
from compiler.passes.base import FusionResult, Pass, register_pass, result


@register_pass
class Attention(Pass):
    name = "attention"
    description = "fuse scaled-dot-product attention into ORT MultiHeadAttention / Attention"
    emits = frozenset({"com.microsoft::MultiHeadAttention"})

    def call(self, model: ir.Model) -> FusionResult:
        trial = model.clone()
        counts = self._fuse(trial)
        if not any(counts.values()):
            return result(model, {})
        try:
            ortsession.session(trial, level="extended")
        except Exception as e:  # noqa: BLE001 - ORT's rejection is the answer
            reason = " ".join(str(e).split())[:300]
            return FusionResult(model, False, {"declined": 1}, [f"ONNX Runtime rejects the fused graph: {reason}"])
        return result(model, self._fuse(model))

    def _fuse(self, model: ir.Model) -> dict[str, int]:
        counts = {"sdpa": sdpa.fuse_sdpa(model, apply_shape_inference=True)}
        if not counts["sdpa"]:
            return {}
        counts["mha"] = mha.fuse_mha1(model) + mha.fuse_mha2(model)
        counts["mha_scale"] = mha_scale.fuse_mha_scale(model)
        if counts["mha"]:
            counts["mha_bias"] = mha_bias.fuse_mha_bias(model)
            if "com.microsoft::Attention" in self.ctx.accepts:
                counts["attention"] = attention.fuse_attention(model)
        counts["sdpa_via_mha"] = sdpa_via_mha.replace_sdpa_by_mha(model)
        optimizer.optimize(model)  # inline leftover intermediate fusion functions, clean up
        ShapeInferencePass()(model)
        return counts
