"""Inference no-ops: Identity (onnx-ir IdentityElimination), Dropout in inference mode, and
arithmetic identities (onnxscript no-op rules):

    Identity(x) → x        Dropout(x[, ratio][, training_mode = false | absent]) → x
    x + 0 → x   x - 0 → x   x * 1 → x   x / 1 → x

The Dropout rewrite is ours: onnxscript's dropout rules match the attribute form of opsets < 12,
while exports at opset ≥ 12 carry ratio and training_mode as (optional) inputs. Dropout is the
identity whenever training_mode is absent or constant false, whatever the ratio, provided its
mask output is unused.

onnx-ir's IdentityElimination also removes ``y = Identity(x)`` when both x and y are outputs of
the same graph (a Scan/Loop body that emits its state and a copy of it): the graph then returns
one value twice under one name and the body's interface breaks (ONNX's test_scan_sum gave
garbage in ONNX Runtime). `_SafeIdentityElimination` keeps such nodes.
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import IdentityEliminationPass
from onnxscript.rewriter.rules.common import _no_op

from compiler.passes.base import Pass, register_pass, result, rule_counts


def _remove_inference_dropout(model: ir.Model) -> int:
    count = 0
    for node in list(model.graph):
        if node.op_type != "Dropout" or node.domain not in ("", "ai.onnx"):
            continue
        training = node.inputs[2] if len(node.inputs) > 2 else None
        if training is not None:
            t = ir.convenience.get_const_tensor(training)
            if t is None or bool(t.numpy().reshape(-1)[0]):
                continue
        if len(node.outputs) > 1 and node.outputs[1].uses():
            continue
        out = node.outputs[0]
        if out.is_graph_output():
            continue  # IdentityElimination handles renaming at outputs; keep this rare case simple
        out.replace_all_uses_with(node.inputs[0])
        model.graph.remove(node, safe=True)
        count += 1
    return count


class _SafeIdentityElimination(IdentityEliminationPass):
    def _try_eliminate_identity_node(self, node: ir.Node) -> bool:
        if (node.op_type == "Identity" and node.domain == "" and len(node.inputs) == 1 and node.inputs[0] is not None
                and node.outputs[0].is_graph_output() and node.inputs[0].is_graph_output()):
            return False
        return super()._try_eliminate_identity_node(node)


@register_pass
class IdentityDropout(Pass):
    name = "identity_dropout"
    description = "remove Identity, inference Dropout and x+0 / x*1 style no-ops"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        counts = {"dropout": _remove_inference_dropout(model)}
        counts.update(rule_counts(_no_op.rules.rules, model, names=lambda r: "arith_no_op"))
        before = len(model.graph)
        _SafeIdentityElimination()(model)
        counts["identity"] = before - len(model.graph) - counts.get("arith_no_op", 0)
        return result(model, counts)
