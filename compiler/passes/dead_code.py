"""Dead code: unused nodes and initializers, unused functions and opset imports (onnx-ir)."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import RemoveUnusedFunctionsPass, RemoveUnusedNodesPass, RemoveUnusedOpsetsPass

from compiler.passes._adapters import WrappedPass
from compiler.passes.base import register_pass


@register_pass
class DeadCode(WrappedPass):
    name = "dead_code"
    description = "remove unused nodes, initializers, functions and opset imports (onnx-ir)"

    def make(self) -> ir.passes.PassBase:
        return ir.passes.Sequential(RemoveUnusedNodesPass(), RemoveUnusedFunctionsPass(), RemoveUnusedOpsetsPass())
