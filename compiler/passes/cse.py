"""Common subexpression elimination (onnx-ir): identical nodes on identical inputs computed
once — legacy exports repeat the same Shape/Gather/Constant chains per layer."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import CommonSubexpressionEliminationPass

from compiler.passes._adapters import WrappedPass
from compiler.passes.base import register_pass


@register_pass
class CSE(WrappedPass):
    name = "cse"
    description = "common subexpression elimination (onnx-ir)"

    def make(self) -> ir.passes.PassBase:
        return CommonSubexpressionEliminationPass()
