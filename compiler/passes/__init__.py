"""Graph passes and the pass manager.

Importing this package registers every pass (one module each) in `PASSES`.
"""

from compiler.passes import (  # noqa: F401  (registration)
    attention,
    batchnorm_folding,
    constant_folding,
    cse,
    dead_code,
    gelu,
    identity_dropout,
    layer_norm,
    lift_constants,
    matmul_add_gemm,
    pad_conv,
    shape_folding,
    shape_inference,
    topological_sort,
    transpose_reshape,
)
from compiler.passes.base import PASSES, FusionResult, Pass, PassContext, get_pass, register_pass
from compiler.passes.pipelines import PIPELINES, Phase, get_pipeline

__all__ = ["PASSES", "PIPELINES", "FusionResult", "Pass", "PassContext", "Phase", "get_pass", "get_pipeline", "register_pass"]
