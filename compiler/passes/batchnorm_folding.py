"""Fold BatchNormalization (inference) into the preceding Conv, ConvTranspose or Gemm
(onnxscript rules):

    BN(Conv(x, W, b)) → Conv(x, W·s, (b − μ)·s + β)    with s = γ / sqrt(σ² + ε)
"""

from __future__ import annotations

from onnxscript.rewriter.rules.common import (
    fuse_batchnorm_into_conv_rule,
    fuse_batchnorm_into_conv_transpose_rule,
    fuse_batchnorm_into_gemm_rule,
)

from compiler.passes._adapters import RulesPass
from compiler.passes.base import register_pass


@register_pass
class BatchNormFolding(RulesPass):
    name = "batchnorm_folding"
    description = "fold inference BatchNormalization into Conv / ConvTranspose / Gemm"

    def rules(self):
        none = frozenset()
        return [
            ("conv_bn", fuse_batchnorm_into_conv_rule, none),
            ("conv_transpose_bn", fuse_batchnorm_into_conv_transpose_rule, none),
            ("gemm_bn", fuse_batchnorm_into_gemm_rule, none),
        ]
