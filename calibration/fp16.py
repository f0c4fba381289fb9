"""FP16 / mixed precision with ONNX Runtime's float16 converter, guided by range analysis.

Nodes stay fp32 when (a) their op type is in the target's ``keep_fp32_ops``, or (b) calibration
(min/max over the calibration data) shows one of their outputs beyond ``fp16_max_abs``
(a margin under fp16's 65504, so intermediate sums don't overflow) or a non-zero magnitude
below fp16's normal range where it would lose precision. Graph inputs and outputs stay fp32
unless the policy says otherwise.

Range analysis cannot see precision lost *inside* a range: fp16 keeps 11 bits, so the difference
of two nearly equal MatMul outputs (a residual, a correction term) is mostly rounding error while
every tensor stays well inside fp16's range. So when the converted model fails the gate,
`rank_by_error_growth` runs the fp32 and fp16 models side by side with the converted nodes'
tensors exposed and ranks each node by how much SNR its outputs lose relative to its inputs
(where the error is born, not where it shows); the int8 fallback's search
(`calibration.fallback.search`) then keeps the worst 1, 2, 4, … in fp32 until the gate holds.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

from calibration.ranges import Ranges
from calibration.sensitivity import NodeSensitivity
from compiler import ortsession
from compiler.profile import PrecisionPolicy
from compiler.verify import SNR_CAP_DB, snr_db

FP16_MIN_NORMAL = 6.1e-5


def keep_fp32_nodes(model: onnx.ModelProto, ranges: Ranges, policy: PrecisionPolicy) -> dict[str, str]:
    """{node name: reason} for nodes that must stay fp32 because of their output ranges."""
    r = ranges.as_dict()
    reasons: dict[str, str] = {}
    for n in model.graph.node:
        for o in n.output:
            if o not in r:
                continue
            amax = max(abs(r[o]["min"]), abs(r[o]["max"]))
            if amax > policy.fp16_max_abs:
                reasons[n.name] = f"output {o!r} reaches |x| = {amax:.4g} > {policy.fp16_max_abs:g}"
            elif 0 < amax < FP16_MIN_NORMAL:
                reasons[n.name] = f"output {o!r} never exceeds |x| = {amax:.3g}, below fp16's normal range"
    return reasons


def convert(model: onnx.ModelProto, policy: PrecisionPolicy, keep_nodes: list[str]) -> onnx.ModelProto:
    ops = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(policy.keep_fp32_ops))
    out = convert_float_to_float16(
        model, keep_io_types=policy.keep_io_types, op_block_list=ops, node_block_list=list(keep_nodes),
        disable_shape_infer=False,
    )
    return _sorted(_drop_round_trips(_dedupe(out), set(keep_nodes), set(ops)))


def _sorted(model: onnx.ModelProto) -> onnx.ModelProto:
    """In topological order: the converter appends the Casts it adds for a blocked node's inputs
    after the node (a one-node LayerNormalization kept in fp32 is then an invalid graph)."""
    m = ir.serde.deserialize_model(model)
    m.graph.sort()
    return ir.serde.serialize_model(m)


MAX_REPAIRS = 8


def runnable(model: onnx.ModelProto, policy: PrecisionPolicy, keep: dict[str, str], feeds: dict[str, np.ndarray],
             log=lambda s: None) -> onnx.ModelProto:
    """The converted model, made one that ONNX Runtime loads and runs on `feeds`: the float16
    converter writes graphs ORT refuses (an fp16 kernel ORT lacks — RoiAlign, Swish, ScatterND
    with reduction max; an output type it gets wrong — LayerNormalization's Mean, TfIdfVectorizer)
    and the gate, the ranking and the backends all read it. Each refusal returns the nodes it
    names (by op type or node name) to fp32, recorded in `keep` with ORT's reason; a refusal that
    names none returns every converted node — the model is then fp32, and says so."""
    from compiler.errors import first_line, is_toolchain_exception, mentioned_ops

    for _ in range(MAX_REPAIRS):
        m = convert(_copy(model), policy, list(keep))
        try:
            onnx.checker.check_model(m)
            sess = ortsession.session(m, level="disabled")
            if all(i.name in feeds for i in sess.get_inputs()):  # ORT checks some kernels only when they run
                sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
            return m
        except Exception as e:  # noqa: BLE001 - a refusal is what this repairs; our own bugs re-raise below
            if not (is_toolchain_exception(e) or isinstance(e, onnx.checker.ValidationError)):
                raise
            text = " ".join(str(e).split())
            converted = [n for n in model.graph.node if n.name not in keep]
            ops = set(mentioned_ops(text, {n.op_type for n in converted}))
            named = [n.name for n in converted if (n.name and len(n.name) > 2 and n.name in text) or n.op_type in ops]
            why = f"ONNX Runtime cannot run it in fp16: {first_line(e)[:200]}"
            if not named:  # nothing to point at: every node back to fp32
                named = [n.name for n in converted]
                why = f"the fp16 model is refused and names no node, so no node is converted: {first_line(e)[:200]}"
            if not named:
                from compiler.errors import ToolchainRefused

                raise ToolchainRefused("onnxruntime cannot run this model in fp16 even with every node kept in fp32 "
                                       f"(the converter's graph): {first_line(e)[:300]}") from None
            log(f"fp16: {len(named)} node(s) back to fp32 — {why}")
            for n in named:
                keep[n] = why
    raise RuntimeError(f"fp16: ONNX Runtime still refuses the model after {MAX_REPAIRS} repairs")


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    return m


def _drop_round_trips(model: onnx.ModelProto, fp32_nodes: set[str], fp32_ops: set[str]) -> onnx.ModelProto:
    """Remove fp32 → fp16 → fp32 Cast pairs. Between two nodes both kept in fp32, ORT's converter
    routes the tensor through fp16 and back (seen when every node of a small MLP was blocked: the
    difference of two nearly equal Gemm outputs was still rounded to fp16), which defeats the
    point of keeping them; the consumer reads the fp32 tensor directly instead."""
    FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16

    def cast_to(n: onnx.NodeProto) -> int | None:
        return next((a.i for a in n.attribute if a.name == "to"), None) if n.op_type == "Cast" else None

    producer = {o: n for n in model.graph.node for o in n.output}
    value_types = {v.name: v.type.tensor_type.elem_type for v in list(model.graph.value_info) + list(model.graph.input)}
    value_types.update({i.name: i.data_type for i in model.graph.initializer})
    changed = False
    for n in model.graph.node:
        first = producer.get(n.input[0]) if cast_to(n) == FLOAT and n.input else None
        if first is None or cast_to(first) != FLOAT16:
            continue
        src = first.input[0]
        p = producer.get(src)
        if p is None:
            fp32 = value_types.get(src) == FLOAT
        elif p.op_type == "Cast":
            fp32 = cast_to(p) == FLOAT
        else:  # a compute node: fp32 when it was kept (by name or by op type)
            fp32 = p.name in fp32_nodes or p.op_type in fp32_ops
        if fp32:
            n.input[0] = src  # now an fp32 → fp32 Cast (ORT drops it); the fp16 Cast loses its reader
            changed = True
    if not changed:
        return model
    outputs = {o.name for o in model.graph.output}
    while True:  # drop Casts whose outputs nobody reads any more
        used = {i for n in model.graph.node for i in n.input} | outputs
        dead = [n for n in model.graph.node if n.op_type == "Cast" and not any(o in used for o in n.output)]
        if not dead:
            return model
        for n in dead:
            model.graph.node.remove(n)


def _dedupe(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop exact duplicate nodes. ORT's converter inserts one Cast per consumer of a kept-fp32
    value, all with the same name and output (MiniLM's attention mask, read by 6 layers), which
    makes the graph invalid; the copies are identical, so keeping one is exact."""
    seen: set[bytes] = set()
    kept = []
    for n in model.graph.node:
        key = n.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            kept.append(n)
    if len(kept) != len(model.graph.node):
        copies = [onnx.NodeProto() for _ in kept]
        for dst, src in zip(copies, kept):
            dst.CopyFrom(src)
        del model.graph.node[:]
        model.graph.node.extend(copies)
    return model


def run_exposed(model: onnx.ModelProto, names: set[str], feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Values (float64, all feeds concatenated) of the tensors `names` that shape inference can type."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    typed = {v.name: v for v in list(onnx.shape_inference.infer_shapes(m).graph.value_info)}
    present = {o.name for o in m.graph.output}
    for name in sorted(names):
        if name in typed and name not in present:
            m.graph.output.append(typed[name])
    sess = ortsession.session(m, level="disabled")
    out_names = [o.name for o in sess.get_outputs()]
    values: dict[str, list[np.ndarray]] = {n: [] for n in out_names}
    for f in feeds:
        for n, v in zip(out_names, sess.run(None, {i.name: f[i.name] for i in sess.get_inputs()})):
            values[n].append(np.asarray(v).astype(np.float64).ravel())
    return {n: np.concatenate(v) for n, v in values.items() if v and names and n in names}


def rank_by_error_growth(float_model: onnx.ModelProto, fp16_model: onnx.ModelProto, kept: set[str],
                         feeds: list[dict[str, np.ndarray]]) -> list[NodeSensitivity]:
    """Converted nodes, worst first. `snr_db` is minus the SNR (dB) a node loses between its least
    accurate input and its least accurate output, so lower means more damage (as for int8)."""
    fp16_nodes = {n.name for n in fp16_model.graph.node}
    nodes = [n for n in float_model.graph.node if n.name in fp16_nodes and n.name not in kept]
    names = {t for n in nodes for t in list(n.input) + list(n.output) if t}
    ref, got = run_exposed(float_model, names, feeds), run_exposed(fp16_model, names, feeds)

    def snr(t: str) -> float:
        if t not in ref or t not in got or ref[t].shape != got[t].shape:
            return SNR_CAP_DB  # a graph input or a weight: the same in both
        return snr_db(ref[t], got[t])

    ranked = []
    for n in nodes:
        loss = min([snr(t) for t in n.input if t] or [SNR_CAP_DB]) - min([snr(t) for t in n.output if t] or [SNR_CAP_DB])
        ranked.append(NodeSensitivity(n.name, n.op_type, -round(max(loss, 0.0), 3)))
    return sorted(ranked, key=lambda s: s.snr_db)
