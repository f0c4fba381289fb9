"""The first divergence: the earliest node (in topological order) whose output breaks the
tolerance while every one of its observed inputs is within it — the layer where the engine went
wrong, named by its ONNX node, op type and output tensor, and, where the exporter recorded them,
the PyTorch module path and source line.

Intermediate tensors are judged on direction and noise — cosine (minimum over samples) and SNR —
at the precision's default bounds for tensors (`compiler.tolerances`): elementwise bounds do not
transfer from an output to the inside of a network.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any

import numpy as np
import onnx_ir as ir

from compiler.tolerances import DEFAULTS, Tolerance
from compiler.verify import distance

# fp32 engines differ from the reference by reassociation only; an intermediate of an fp32
# engine that drops below these has a real fault (a wrong kernel), not rounding
FP32_INTERNAL = Tolerance(cosine=0.9999, snr_db=60.0, reason="fp32 intermediate tensors")


def tolerance_for(precision: str) -> Tolerance:
    """The loosest cosine any output of this precision is held to (int8: 0.95, the logits gate),
    and the SNR a zero-mean error at that cosine has (−10·log10(1 − cos²): 10 dB at 0.95): int8
    error accumulates layer by layer in a healthy network (EfficientNet-Lite0's last tensors reach
    cos 0.96, 14.5 dB) while a fault — a clipped or overflowing layer — falls far below both (the
    planted one: 0.02 dB). The SNR bound catches a scale error that cosine cannot see."""
    if precision == "fp32":
        return FP32_INTERNAL
    cos = min(t.cosine for t in DEFAULTS[precision].values() if t.cosine is not None)
    snr = -10 * math.log10(max(1 - cos * cos, 1e-12))
    return Tolerance(cosine=cos, snr_db=round(snr, 2), reason=f"{precision} intermediate tensors: the loosest output cosine "
                     "of this precision, and its SNR")


def stats(ref: np.ndarray, got: np.ndarray, tol: Tolerance) -> dict[str, Any]:
    if ref.shape != got.shape:
        return {"max_abs": None, "cosine": None, "snr_db": None, "within": False, "why": f"shape {got.shape} vs {ref.shape}"}
    max_abs, cos, snr = distance(ref, got)
    within = not (np.isnan(cos) or np.isnan(snr)) and cos >= (tol.cosine or -1) and snr >= (tol.snr_db or -1e9)
    return {"max_abs": max_abs if np.isfinite(max_abs) else None, "cosine": None if np.isnan(cos) else cos,
            "snr_db": None if np.isnan(snr) else snr, "within": bool(within)}


def source_of(node: ir.Node) -> dict[str, str]:
    """The PyTorch module path and source line the dynamo exporter recorded in the node."""
    meta = node.metadata_props
    out = {}
    scopes = meta.get("pkg.torch.onnx.name_scopes")
    if scopes:
        try:
            parts = [p for p in ast.literal_eval(scopes) if p]
        except (ValueError, SyntaxError):
            parts = []
        if len(parts) > 1:
            out["module"] = ".".join(parts[:-1])  # the last scope is the aten op
    trace = meta.get("pkg.torch.onnx.stack_trace", "")
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', trace)
    own = [f for f in frames if "site-packages" not in f[0] and "/torch/" not in f[0]]
    if own:
        file, line, fn = own[-1]
        out["line"] = f"{file}:{line} in {fn}"
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    return out


def locate(model: ir.Model, reference: dict[str, np.ndarray], observed: dict[str, np.ndarray],
           tol: Tolerance) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Per observed tensor (topological order of `model`, the float reference graph): statistics;
    and the first divergence, or None.

    A departure that the next layer absorbs is not where the engine went wrong: a Gemm output
    quantized with its Relu's range differs from the float Gemm output in the negatives that the
    Relu drops anyway. So a divergent tensor counts only if it carries on — it is a graph output,
    or some reader's observed output diverges too (or is not observable)."""
    rows, within, producer = [], {}, {}
    for node in model.graph:
        for v in node.outputs:
            name = v.name
            if name not in observed or name not in reference:
                continue
            s = stats(reference[name], observed[name], tol)
            within[name] = s["within"]
            producer[name] = node
            rows.append({"tensor": name, "node": node.name, "op_type": node.op_type, **s})
    outputs = {o.name for o in model.graph.outputs}

    def carries_on(name: str) -> bool:
        if name in outputs:
            return True
        value = producer[name].outputs[[o.name for o in producer[name].outputs].index(name)]
        readers = [u.node for u in value.uses()]
        return any(not within.get(o.name, False) for r in readers for o in r.outputs if o.name) or not readers

    for row in rows:
        if row["within"] or not carries_on(row["tensor"]):
            continue
        node = producer[row["tensor"]]
        inputs = [i.name for i in node.inputs if i is not None and i.name in within]
        if all(within[i] for i in inputs):
            return rows, {"node": node.name, "op_type": node.op_type, "tensor": row["tensor"], "inputs": inputs,
                          "cosine": row["cosine"], "snr_db": row["snr_db"], "source": source_of(node)}
    return rows, None
