"""MatMul + Add → Gemm for 2-D operands (onnxscript rules), including transposed inputs:

    Add(MatMul(A, B), C) → Gemm(A, B, C)          Add(MatMul(Aᵀ, B), C) → Gemm(A, B, C, transA=1)
"""

from __future__ import annotations

from onnxscript.rewriter.rules.common import (
    matmul_add_to_gemm_rule,
    transpose_a_matmul_add_to_gemm_rule,
    transpose_ab_matmul_add_to_gemm_rule,
    transpose_b_matmul_add_to_gemm_rule,
)

from compiler.passes._adapters import RulesPass
from compiler.passes.base import register_pass


@register_pass
class MatMulAddGemm(RulesPass):
    name = "matmul_add_gemm"
    description = "fuse 2-D MatMul + Add (optionally with transposed inputs) into Gemm"

    def rules(self):
        none = frozenset()
        return [
            ("matmul_add", matmul_add_to_gemm_rule, none),
            ("transA_matmul_add", transpose_a_matmul_add_to_gemm_rule, none),
            ("transB_matmul_add", transpose_b_matmul_add_to_gemm_rule, none),
            ("transAB_matmul_add", transpose_ab_matmul_add_to_gemm_rule, none),
        ]
