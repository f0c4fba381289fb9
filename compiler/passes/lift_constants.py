"""Constant nodes → initializers (onnx-ir LiftConstantsToInitializersPass): weights and small
constants live in one place, so rules that look for constant inputs find them and the node
count reflects computation only."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import LiftConstantsToInitializersPass

from compiler.passes._adapters import WrappedPass
from compiler.passes.base import register_pass


@register_pass
class LiftConstants(WrappedPass):
    name = "lift_constants"
    description = "turn Constant nodes into initializers (onnx-ir)"

    def make(self) -> ir.passes.PassBase:
        return LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)
