"""FP16 / mixed precision with ONNX Runtime's float16 converter, guided by range analysis.

Nodes stay fp32 when (a) their op type is in the target's ``keep_fp32_ops``, or (b) calibration
(min/max over the calibration data) shows one of their outputs beyond ``fp16_max_abs``
(a margin under fp16's 65504, so intermediate sums don't overflow) or a non-zero magnitude
below fp16's normal range where it would lose precision. Graph inputs and outputs stay fp32
unless the policy says otherwise.
"""

from __future__ import annotations

import onnx
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

from calibration.ranges import Ranges
from compiler.profile import PrecisionPolicy

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
    return _dedupe(out)


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


