"""Topological order of nodes (onnx-ir), required by the ONNX spec after rewrites."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import TopologicalSortPass

from compiler.passes._adapters import WrappedPass
from compiler.passes.base import register_pass


@register_pass
class TopologicalSort(WrappedPass):
    name = "topological_sort"
    description = "sort nodes topologically (onnx-ir)"

    def make(self) -> ir.passes.PassBase:
        return TopologicalSortPass()
