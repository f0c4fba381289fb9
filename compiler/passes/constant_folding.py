"""Constant folding: onnxscript's folder, plus small ConstantOfShape outputs.

onnxscript keeps every ConstantOfShape unfolded on purpose (folding a large one would bloat
the model). Exports such as EfficientNet's legacy "same"-padding subgraphs compute Pad amounts
from ``ConstantOfShape([4])``; until that is a constant nothing downstream folds. So a
ConstantOfShape whose shape input is constant and whose output has at most
`SMALL_CONSTANT_OF_SHAPE` elements is replaced by an initializer first.

    ConstantOfShape(shape=c) → initializer full(c, value)      when prod(c) ≤ 1024
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.optimizer import _constant_folding

from compiler.passes.base import Pass, register_pass

SMALL_CONSTANT_OF_SHAPE = 1024


@register_pass
class ConstantFolding(Pass):
    name = "constant_folding"
    description = "fold constant subgraphs (onnxscript folder) incl. small ConstantOfShape"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = _fold_small_constant_of_shape(model)
        res = _constant_folding.FoldConstantsPass(
            shape_inference=True,
            input_size_limit=_constant_folding.DEFAULT_CONSTANT_FOLD_INPUT_SIZE_LIMIT,
            output_size_limit=_constant_folding.DEFAULT_CONSTANT_FOLD_OUTPUT_SIZE_LIMIT,
        )(model)
        return ir.passes.PassResult(res.model, modified or res.modified)


def _fold_small_constant_of_shape(model: ir.Model) -> bool:
    graph = model.graph
    modified = False
    for node in list(graph):
        if node.op_type != "ConstantOfShape" or node.domain not in ("", "ai.onnx"):
            continue
        shape_t = ir.convenience.get_const_tensor(node.inputs[0]) if node.inputs[0] is not None else None
        if shape_t is None:
            continue
        dims = [int(d) for d in shape_t.numpy().reshape(-1)]
        if any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.int64)) > SMALL_CONSTANT_OF_SHAPE:
            continue
        attr = node.attributes.get("value")
        fill = attr.as_tensor().numpy().reshape(-1) if attr is not None else np.zeros(1, np.float32)
        array = np.full(dims, fill[0], dtype=fill.dtype)
        out = node.outputs[0]
        const = ir.Value(name=out.name, const_value=ir.tensor(array, name=out.name),
                         shape=ir.Shape(array.shape), type=ir.TensorType(ir.DataType.from_numpy(array.dtype)))
        graph.remove(node, safe=False)
        out.replace_all_uses_with(const, replace_graph_outputs=True)
        graph.register_initializer(const)
        modified = True
    return modified
