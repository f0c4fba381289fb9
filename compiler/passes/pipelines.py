"""Named pipelines: a target profile names one (``pipeline = "..."``); each is a table of
contents of phases, each phase a list of registered pass names run to a fixpoint.

A pass that would emit an op the target's backend does not accept is skipped (and listed as
skipped in the manifest), so the same pipeline serves targets with different capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.errors import unknown_name


@dataclass(frozen=True)
class Phase:
    name: str
    passes: tuple[str, ...]
    steps: int = 1  # fixpoint iterations at most (stops early when nothing changes)


_CLEANUP = Phase("cleanup", ("shape_inference", "constant_folding", "identity_dropout", "cse", "dead_code"), steps=3)
_SIMPLIFY = Phase(
    "simplify",
    ("shape_inference", "shape_folding", "pad_conv", "batchnorm_folding", "matmul_add_gemm", "transpose_reshape",
     "constant_folding", "dead_code"),
    steps=4,
)
_FUSE = Phase("fuse", ("layer_norm", "gelu", "attention", "dead_code"))
_FINALIZE = Phase("finalize", ("lift_constants", "shape_inference", "dead_code", "topological_sort"))

PIPELINES: dict[str, tuple[Phase, ...]] = {
    # Everything: simplification and the fusions the target accepts.
    "default": (_CLEANUP, _SIMPLIFY, _FUSE, _FINALIZE),
    # Simplification only: for backends that do their own fusion (or to compare against).
    "simplify": (_CLEANUP, _SIMPLIFY, _FINALIZE),
    # The exported graph as is.
    "none": (),
}


def get_pipeline(name: str) -> tuple[Phase, ...]:
    if name not in PIPELINES:
        raise unknown_name("pipeline", name, PIPELINES)
    return PIPELINES[name]
