"""Precision bisection: the smallest set of nodes to keep in float so the engine passes its gate.

Nodes are ordered by the error they add in the engine itself — the SNR lost between a node's
observed inputs and its observed output (`localize`) — and the same search the build's fallback
uses (`calibration.fallback.search`: 1, 2, 4, … nodes, then bisection) finds the count, each probe
a real engine: the int8 model with those nodes returned to float by graph surgery (their float
weights from the reference), or the fp16 model converted again with them kept in fp32, compiled
by the artifact's backend and run on the golden set. The answer is a keep-float list the spec
(`[precision] keep_float`) and the CLI (`--keep-float`) accept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import onnx_ir as ir
from onnx_ir.passes.common import TopologicalSortPass

from calibration import fp16 as fp16_mod
from calibration import qdq, surgery
from calibration.fallback import Gate, search
from calibration.sensitivity import NodeSensitivity
from compiler import ir as irh
from compiler.debug import observe
from compiler.golden import Golden
from compiler.parity import check_parity
from compiler.toolchain import toolchain_step

SNR_CAP = 200.0


def rank(debug: dict[str, Any], reference: ir.Model) -> list[NodeSensitivity]:
    """Nodes by SNR lost across them in the engine (worst first)."""
    snr = {t["tensor"]: (t["snr_db"] if t["snr_db"] is not None else -SNR_CAP) for t in debug["tensors"]}
    out = []
    for node in reference.graph:
        outs = [snr[v.name] for v in node.outputs if v.name in snr]
        if not outs:
            continue
        ins = [snr[v.name] for v in node.inputs if v is not None and v.name in snr]
        lost = min(ins, default=SNR_CAP) - min(outs)
        out.append(NodeSensitivity(node.name, node.op_type, -lost))  # snr_db: lower is worse, as the fallback reads it
    return sorted(out, key=lambda s: s.snr_db)


def undo_activation_removal(reduced: onnx.ModelProto, ref: onnx.ModelProto) -> onnx.ModelProto:
    """The int8 model as the quantizer made it: the Relu/Clip nodes the build removed (their
    dequantized input could not leave their bounds: exact) put back between that input and the
    readers that read the activation in the reference — so graph surgery sees the graph it knows."""
    out = onnx.ModelProto()
    out.CopyFrom(reduced)
    present = {n.name for n in out.graph.node}
    ref_readers = {}
    for n in ref.graph.node:
        for i in n.input:
            ref_readers.setdefault(i, set()).add(n.name)
    q_of = {n.input[0]: n.output[0] for n in out.graph.node if n.op_type == "QuantizeLinear"}
    dq_of = {n.input[0]: n.output[0] for n in out.graph.node if n.op_type == "DequantizeLinear"}
    for r in ref.graph.node:
        if r.op_type not in observe.ACTIVATIONS or r.name in present:
            continue
        alias = dq_of.get(q_of.get(r.input[0], ""), None)
        if alias is None:
            continue
        node = onnx.NodeProto()
        node.CopyFrom(r)
        node.input[0] = alias
        for n in out.graph.node:
            if n.name in ref_readers.get(r.output[0], ()):
                for k, i in enumerate(n.input):
                    if i == alias:
                        n.input[k] = r.output[0]
        out.graph.node.append(node)
    model = irh.from_proto(out)
    TopologicalSortPass()(model)
    return irh.to_proto(model)


def bisect(model_path: Path, reference_path: Path, debug: dict[str, Any], golden: Golden, kinds: dict[str, str],
           backend: Any, profile: Any, precision: str, can_run: bool, calibration: dict[str, Any] | None, workdir: Path,
           log: Callable[[str], None]) -> dict[str, Any]:
    reduced = onnx.load(str(model_path))
    ref = onnx.load(str(reference_path))
    ranked = rank(debug, irh.from_proto(ref))
    if precision == "int8":
        op_types = profile.quantization.op_types if profile.quantization is not None else ()
        quantized = set(qdq.quantized_nodes(reduced, ref, op_types))  # as the build counts them
        ranked = [s for s in ranked if s.node in quantized]

        whole = undo_activation_removal(reduced, ref)

        def build(exclude: list[str], out: Path) -> onnx.ModelProto:
            m = surgery.revert(whole, ref, exclude, quantized) if exclude else reduced
            onnx.save(m, str(out))
            return m
    else:
        already = [n["node"] for n in (calibration or {}).get("float_nodes", [])]
        policy = profile.precision_policy

        def build(exclude: list[str], out: Path) -> onnx.ModelProto:
            m = fp16_mod.convert(onnx.load(str(reference_path)), policy, already + exclude)
            onnx.save(m, str(out))
            return m

    def gate(path: Path) -> Gate:
        out = path.with_suffix(".engine")
        out.mkdir(exist_ok=True)
        candidate = ir.load(path)
        with toolchain_step(backend.name, "compile a bisection probe of", candidate):
            engine = backend.compile(candidate, path, profile, precision, out)
        with toolchain_step(backend.name, "run a bisection probe of", candidate):
            runner = backend.load(engine, threads=1) if can_run else backend.host_check(engine)
            with runner:
                rep = check_parity(runner, golden, None, precision, kinds)
        worst = min((o.cosine for o in rep.outputs.values()), default=1.0)
        return Gate(rep.passed, rep.failures(), f"cos {worst:.4f}")

    workdir.mkdir(parents=True, exist_ok=True)
    result = search(ranked, build, gate, workdir, log)
    return {"keep_float": [s.node for s in result.excluded], "passed": result.passed, "rounds": result.rounds,
            "ranking": [{"node": s.node, "op_type": s.op_type, "snr_db_lost": round(-s.snr_db, 2)} for s in ranked[:30]]}
