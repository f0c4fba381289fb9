"""Localization of an artifact: its float reference and its engine (built again with every
intermediate tensor exposed) on the golden inputs, compared tensor by tensor; the first
divergence named. Used by `debug --artifact` and, with a time bound, by a build whose parity
failed. The result is `debug.json`:

    {"precision", "backend", "observed_with", "tolerance", "seconds",
     "tensors": [{tensor, node, op_type, max_abs, cosine, snr_db, within}, …],   # topological
     "unobserved": [names the runtime does not produce (fused away)],
     "first_divergence": {node, op_type, tensor, inputs, cosine, snr_db, source: {module, line}} | null,
     "keep_float": [...] (after --bisect)}
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import onnx_ir as ir

from compiler.artifact.read import REFERENCE_FILE
from compiler.debug import divergence, observe
from compiler.golden import Golden


def load_model(path: Path) -> ir.Model:
    m = ir.load(path)
    ir.external_data.load_to_model(m)
    return m


def reference_model(artifact: Path) -> ir.Model:
    ref = artifact / REFERENCE_FILE
    return load_model(ref if ref.is_file() else artifact / "model.onnx")


def localize(model: ir.Model, reference: ir.Model, golden: Golden, backend: Any, profile: Any, precision: str,
             can_run: bool, workdir: Path, deadline: float | None = None) -> dict[str, Any]:
    """Raises OverTimeBound once past `deadline` (checked between steps: a runtime call is not interrupted)."""
    t0 = time.perf_counter()
    names = observe.float_tensors(reference)
    # the float reference (ONNX Runtime, one thread) runs beside the observed engine (one thread):
    # this host has two cores, and the two runs share nothing
    with ThreadPoolExecutor(1, thread_name_prefix="reference") as pool:
        pending = pool.submit(observe.reference, reference, golden.inputs)
        obs = observe.engine(backend, profile, precision, model, reference, names, golden.inputs, workdir, can_run,
                             deadline)
        ref_values = pending.result()
    observe.check_deadline(deadline, "running the engine and the float reference")
    obs.unobserved = [n for n in obs.unobserved if n in ref_values]
    tol = divergence.tolerance_for(precision)
    rows, first = divergence.locate(reference, ref_values, obs.values, tol)
    out = {"precision": precision, "backend": backend.name,
           "observed_with": "engine" if can_run else "host-side check (the engine cannot run here)",
           "tolerance": tol.as_dict(), "tensors": rows, "unobserved": obs.unobserved, "first_divergence": first,
           "seconds": round(time.perf_counter() - t0, 3)}
    return out


def summary(debug: dict[str, Any]) -> str:
    """One line for a person (the CLI, report.md)."""
    first = debug.get("first_divergence")
    n, u = len(debug.get("tensors", [])), len(debug.get("unobserved", []))
    if first is None:
        return f"no divergence: all {n} observed tensors within tolerance ({u} not observable)"
    src = first.get("source") or {}
    where = "".join([f", module {src['module']}" if src.get("module") else "", f", {src['line']}" if src.get("line") else ""])
    cos = first.get("cosine")
    return (f"first divergence at node {first['node']!r} ({first['op_type']}), tensor {first['tensor']!r}"
            + (f" (cosine {cos:.4f})" if cos is not None else "") + where)
