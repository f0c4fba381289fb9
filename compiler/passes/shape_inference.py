"""ONNX shape inference (onnx-ir's ShapeInferencePass), re-run from scratch on unknown dims.

onnx-ir merges inferred shapes into the IR but never replaces a dim the IR already has, so a
dim inferred as unknown early (``unk__183``: e.g. after a Pad whose amounts were not constant
yet) stays unknown after the pads are folded. This pass first forgets such dims (None, or the
``unk__`` names ONNX invents) on intermediate values, infers again, and restores the previous
shape wherever inference now knows nothing — so it only ever gains information. The rewrite
rules need it: "x and y share dim 0" is provable only when both carry the same dim name.
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass

from compiler.passes.base import Pass, register_pass


def _unknown(dim: object) -> bool:
    return isinstance(dim, ir.SymbolicDim) and (dim.value is None or dim.value.startswith("unk__"))


def _signature(model: ir.Model) -> list:
    return [(v.name, str(v.shape), v.dtype) for n in model.graph for v in n.outputs]


@register_pass
class ShapeInference(Pass):
    name = "shape_inference"
    description = "ONNX shape/type inference (onnx-ir), re-deriving dims left unknown by earlier runs"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        before = _signature(model)
        outputs = {id(v) for v in model.graph.outputs}
        forgotten: dict[int, tuple[ir.Value, ir.Shape]] = {}
        for node in model.graph:
            for v in node.outputs:
                if id(v) not in outputs and v.shape is not None and any(_unknown(d) for d in v.shape):
                    forgotten[id(v)] = (v, v.shape)
                    v.shape = None
        ShapeInferencePass()(model)
        for v, shape in forgotten.values():
            if v.shape is None:
                v.shape = shape
        return ir.passes.PassResult(model, _signature(model) != before)
