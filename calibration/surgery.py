"""Move single nodes between the float model F and its fully quantized QDQ model Q by editing
graphs, not by quantizing again (ORT's quantizer re-runs shape inference on every call, which
would make per-node sensitivity and fallback cost one quantization each).

Both graphs keep the float model's node and tensor names: in Q a quantized node reads
``DequantizeLinear`` outputs where F's node reads float tensors, and its float output X is
re-quantized (``Q(X) → DQ``) for its consumers. A node's quantization is both: its input
Q/DQ chains and its output Q/DQ. (ORT gives a bias's DequantizeLinear output the bias's own
name, so names are checked for collisions when moving nodes between graphs.)

- `only(F, Q, node)`: F with just `node` quantized — its input chains copied over and its
  consumers reading its re-quantized output — that node's own effect, in isolation.
- `revert(Q, F, nodes, quantized)`: Q with `nodes` reading F's float inputs again (float
  weights copied from F) and their consumers that are not quantized nodes reading the float
  output; orphaned Q/DQ nodes and quantized initializers are removed. With `keep_output_ops`,
  a reverted node still reads the re-quantized output of a still-quantized producer of those op
  types: TFLite (and ORT's QLinear kernels) run a MatMul/Conv integer only when its output is
  quantized too, so a bias Add going back to float must not take its MatMul with it.
"""

from __future__ import annotations

from collections.abc import Iterable

import onnx
import onnx_ir as ir
from onnx_ir.passes.common import RemoveUnusedNodesPass


def producers(m: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in m.graph.node for o in n.output}


def _nodes(m: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {n.name: n for n in m.graph.node}


def consumers(m: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for n in m.graph.node:
        for i in n.input:
            out.setdefault(i, []).append(n)
    return out


def _names(m: onnx.ModelProto) -> set[str]:
    return {i.name for i in m.graph.initializer} | {i.name for i in m.graph.input} | {o for n in m.graph.node for o in n.output}


def _cleanup(m: onnx.ModelProto) -> onnx.ModelProto:
    model = ir.from_proto(m)
    RemoveUnusedNodesPass()(model)
    from onnx_ir.passes.common import TopologicalSortPass

    TopologicalSortPass()(model)
    return ir.to_proto(model)


def _output_dq(q: onnx.ModelProto, tensor: str) -> list[tuple[onnx.NodeProto, onnx.NodeProto]]:
    """(QuantizeLinear, DequantizeLinear) pairs that re-quantize `tensor` in Q."""
    cons = consumers(q)
    pairs = []
    for qn in cons.get(tensor, []):
        if qn.op_type == "QuantizeLinear" and qn.input[0] == tensor:
            pairs.extend((qn, dq) for dq in cons.get(qn.output[0], []) if dq.op_type == "DequantizeLinear")
    return pairs


def only(float_model: onnx.ModelProto, qdq_model: onnx.ModelProto, node: str) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(float_model)
    q_nodes, prod = _nodes(qdq_model), producers(qdq_model)
    q_inits = {i.name: i for i in qdq_model.graph.initializer}
    taken = _names(out)
    rename: dict[str, str] = {}
    copied: list[onnx.NodeProto] = []
    seen: set[int] = set()

    def copy(n: onnx.NodeProto) -> None:
        if id(n) in seen:
            return
        seen.add(id(n))
        c = onnx.NodeProto()
        c.CopyFrom(n)
        for k, i in enumerate(c.input):
            if i not in q_inits or i in rename:
                continue
            if i not in taken:
                out.graph.initializer.append(q_inits[i])
                taken.add(i)
            elif not any(init.name == i and init == q_inits[i] for init in out.graph.initializer):
                # the float graph already has a tensor of this name (a value of ONNX's expanded
                # functions can be named like the quantizer's scales): the QDQ constant gets its own
                renamed = q_inits[i].__deepcopy__()
                renamed.name = rename[i] = f"{i}__q"
                out.graph.initializer.append(renamed)
                taken.add(renamed.name)
        for k, o in enumerate(c.output):
            if o in taken:
                rename[o] = c.output[k] = f"{o}__q"
            taken.add(c.output[k])
        for k, i in enumerate(c.input):
            c.input[k] = rename.get(i, i)
        copied.append(c)

    q_node = q_nodes[node]
    new_inputs = []
    for name in q_node.input:
        dq = prod.get(name)
        if dq is not None and dq.op_type == "DequantizeLinear":
            q = prod.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                copy(q)
            copy(dq)
        new_inputs.append(rename.get(name, name))
    f_consumers = consumers(out)
    target = _nodes(out)[node]
    for k, x in enumerate(q_node.output):
        if x != target.output[k]:
            # ORT renamed a graph output: Q's node writes `<out>_QuantizeLinear_Input` and the
            # DequantizeLinear writes the graph output's name. Mirror that in F.
            taken.discard(target.output[k])  # the DequantizeLinear takes over the graph output's name
            target.output[k] = x
            taken.add(x)
            for qn, dq in _output_dq(qdq_model, x):
                copy(qn)
                copy(dq)
            continue
        for qn, dq in _output_dq(qdq_model, x):
            copy(qn)
            copy(dq)
            dq_out = rename.get(dq.output[0], dq.output[0])
            for c in f_consumers.get(x, []):
                qc = q_nodes.get(c.name)
                if qc is None:
                    continue
                for k, i in enumerate(c.input):
                    if i == x and k < len(qc.input) and qc.input[k] == dq.output[0]:
                        c.input[k] = dq_out
    del target.input[:]
    target.input.extend(new_inputs)
    out.graph.node.extend(copied)
    return _cleanup(out)


def revert(qdq_model: onnx.ModelProto, float_model: onnx.ModelProto, nodes: Iterable[str],
           quantized: Iterable[str] = (), keep_output_ops: Iterable[str] = ()) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(qdq_model)
    nodes = list(nodes)
    still_quantized = set(quantized) - set(nodes)
    f_nodes = _nodes(float_model)
    f_inits = {i.name: i for i in float_model.graph.initializer}
    f_prod = producers(float_model)
    # still-quantized producers whose output stays quantized for reverted consumers too
    keep_from = {n for n in still_quantized if f_nodes[n].op_type in set(keep_output_ops)}
    o_nodes = _nodes(out)
    produced = producers(out)
    taken = _names(out)
    for name in nodes:
        q_node = o_nodes[name]
        new_inputs = []
        for k, i in enumerate(f_nodes[name].input):
            p = f_prod.get(i)
            if p is not None and p.name in keep_from and _dequantizes(produced, q_node.input[k], i):
                new_inputs.append(q_node.input[k])  # the producer's int8 output, dequantized
            elif i in f_inits and (i in produced or i not in taken):
                # the float weight; its name may now be a DequantizeLinear output in Q
                new = i if i not in taken else f"{i}__float"
                if new not in taken:
                    init = onnx.TensorProto()
                    init.CopyFrom(f_inits[i])
                    init.name = new
                    out.graph.initializer.append(init)
                    taken.add(new)
                new_inputs.append(new)
            else:
                new_inputs.append(i)
        del q_node.input[:]
        q_node.input.extend(new_inputs)
        graph_outputs = {o.name for o in out.graph.output}
        for k, x in enumerate(list(q_node.output)):
            pairs = _output_dq(out, x)
            to_output = [(qn, dq) for qn, dq in pairs if dq.output[0] in graph_outputs]
            if to_output:
                # the node wrote the graph output through Q/DQ: write it directly again
                q_node.output[k] = to_output[0][1].output[0]
                drop = {o for qn, dq in to_output for o in (*qn.output, *dq.output)}
                keep = [n for n in out.graph.node if not (n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.output[0] in drop)]
                # (rebuilt rather than .remove(): references into a repeated field go stale on removal)
                kept = [onnx.NodeProto() for _ in keep]
                for dst, src in zip(kept, keep):
                    dst.CopyFrom(src)
                del out.graph.node[:]
                out.graph.node.extend(kept)
                o_nodes = _nodes(out)
                q_node = o_nodes[name]
                x = q_node.output[k]
            for _, dq in _output_dq(out, x):
                for c in out.graph.node:
                    if c.name in still_quantized:
                        continue
                    for k, i in enumerate(c.input):
                        if i == dq.output[0]:
                            c.input[k] = x
    return _cleanup(out)


def _dequantizes(produced: dict[str, onnx.NodeProto], name: str, tensor: str) -> bool:
    """Is `name` the output of DequantizeLinear(QuantizeLinear(`tensor`))?"""
    dq = produced.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return False
    q = produced.get(dq.input[0])
    return q is not None and q.op_type == "QuantizeLinear" and q.input[0] == tensor
