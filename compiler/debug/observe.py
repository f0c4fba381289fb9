"""Intermediate tensors of an engine and of its float reference, matched by ONNX value name.

Runtimes expose only graph outputs, so the engine is built again from the same ONNX with the
tensors to watch made graph outputs too (the "observed engine"), by the artifact's own backend
and profile — or by its host-side check where the engine cannot run here (the `jetson` half) —
and run on the golden inputs. A tensor the runtime no longer produces under its name (fused
away, renamed) is reported as not observable; nothing is guessed.

In an int8 QDQ graph a float tensor ``t`` is followed by ``Q → DQ``: what the next layer reads is
the DQ output, so that is what is observed for ``t`` (clipping at the calibration range shows
there). The reference is the artifact's float model (``reference.onnx`` beside a reduced-precision
engine, else ``model.onnx``) in ONNX Runtime with every node output exposed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx_ir as ir

from compiler import ir as irh
from compiler.toolchain import toolchain_step
from targets.base import Backend

FLOAT = (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.BFLOAT16, ir.DataType.DOUBLE)


class OverTimeBound(Exception):
    """The localization passed its deadline between two of its steps (a failed build's bound)."""


def check_deadline(deadline: float | None, after: str) -> None:
    if deadline is not None and time.perf_counter() > deadline:
        raise OverTimeBound(f"over the time bound after {after}")


@dataclass
class Observation:
    values: dict[str, np.ndarray]  # float tensor name → the value the engine computed for it
    watched: list[str]  # every tensor asked for
    unobserved: list[str] = field(default_factory=list)


def float_tensors(model: ir.Model) -> list[str]:
    """Node outputs of a float element type, in topological order (the graph's own order)."""
    out = []
    for node in model.graph:
        for v in node.outputs:
            if v.name and v.dtype in FLOAT:
                out.append(v.name)
    return out


def qdq_aliases(model: ir.Model) -> dict[str, str]:
    """float tensor → the DequantizeLinear output its readers see (int8 QDQ graphs)."""
    aliases = {}
    for node in model.graph:
        if node.op_type != "DequantizeLinear" or node.inputs[0] is None:
            continue
        q = node.inputs[0].producer()
        if q is not None and q.op_type == "QuantizeLinear" and q.inputs[0] is not None and q.inputs[0].name:
            aliases.setdefault(q.inputs[0].name, node.outputs[0].name)
    return aliases


ACTIVATIONS = ("Relu", "Clip")


def plan(reference: ir.Model, model: ir.Model) -> dict[str, str | None]:
    """Reference tensor → the engine value to watch for it (None: not observable as such).

    int8 quantizes a tensor that only a Relu/Clip reads with the activation's own range, and
    removes an activation its dequantized input cannot leave: the engine never holds the
    pre-activation value, so that tensor is not observable, and a removed activation's output is
    its input's dequantized value."""
    aliases = qdq_aliases(model)
    nodes = {n.name for n in model.graph}
    values = {v.name for n in model.graph for v in n.outputs if v.name}
    out: dict[str, str | None] = {}
    for node in reference.graph:
        for v in node.outputs:
            t = v.name
            if not t or v.dtype not in FLOAT:
                continue
            readers = [u.node for u in v.uses()]
            if readers and t in aliases and all(r.op_type in ACTIVATIONS for r in readers):
                out[t] = None
            elif node.op_type in ACTIVATIONS and node.name not in nodes and node.inputs[0] is not None:
                src = node.inputs[0].name
                out[t] = aliases.get(src, src) if (src in aliases or src in values) else None
            else:
                out[t] = aliases.get(t, t) if (t in aliases or t in values) else None
    return out


def expose(model: ir.Model, names: list[str]) -> ir.Model:
    """A copy of `model` whose graph outputs also include the values named `names`."""
    m = ir.serde.deserialize_model(irh.to_proto(model))
    values = {v.name: v for node in m.graph for v in node.outputs if v.name}
    present = {o.name for o in m.graph.outputs}
    for n in names:
        if n in values and n not in present:
            m.graph.outputs.append(values[n])
            present.add(n)
    return m


def reference(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every float node output of the float model, run in ONNX Runtime (graph optimizations off:
    the reference computes each tensor the graph names)."""
    from compiler import ortsession

    names = float_tensors(model)
    exposed = expose(model, names)
    with toolchain_step("onnxruntime", "run the float reference of", exposed):
        sess = ortsession.session(exposed, level="disabled")
        outs = [o.name for o in sess.get_outputs()]
        return dict(zip(outs, sess.run(None, {k: feeds[k] for k in (i.name for i in sess.get_inputs())})))


def engine(backend: Backend, profile, precision: str, model: ir.Model, reference: ir.Model, names: list[str],
           feeds: dict[str, np.ndarray], workdir: Path, can_run: bool, deadline: float | None = None) -> Observation:
    """The engine built again with the values standing for `names` (reference tensors) exposed,
    run on `feeds` (unless the build took it past `deadline`)."""
    where = plan(reference, model)
    wanted = [where.get(n) for n in names]
    exposed = expose(model, [w for w in wanted if w])
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "model.onnx"
    irh.save(exposed, path)  # a copy already (`expose`)
    with toolchain_step(backend.name, "build the observed engine of", exposed):
        runner = backend.observe(exposed, path, profile, precision, workdir, can_run)
    if runner is None:
        return Observation({}, list(names), list(names))
    if deadline is not None and time.perf_counter() > deadline:
        runner.close()
        check_deadline(deadline, "building the observed engine")
    with toolchain_step(backend.name, "run the observed engine of", exposed), runner:
        got = runner.run(feeds)
    values, unobserved = {}, []
    for n, w in zip(names, wanted):
        if w is not None and w in got and np.asarray(got[w]).dtype.kind == "f":
            values[n] = np.asarray(got[w])
        else:
            unobserved.append(n)
    return Observation(values, list(names), unobserved)
