"""One model through `make bench-versus`: export it once (the raw ONNX the by-hand flows start
from), build and load ours, run every flow on the held-out set for accuracy, time them all
interleaved, and write ``<out>/versus-<model>.json`` with the rows, the verdict and the
dominated artifacts.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx_ir as ir

from compiler import frontend
from compiler import spec as spec_mod
from compiler.versus.flows import OURS, by_hand_flows, eager_flow, our_flows
from compiler.versus.heldout import HELDOUT_DIR, load_heldout
from compiler.versus.measure import accuracy, time_flows
from compiler.versus.verdict import dominated, verdict


def run(model: str, out: Path, batches: list[int], iters: int, warmup: int, ours: tuple[tuple[str, str], ...] = OURS,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    spec = spec_mod.resolve(model)
    held = load_heldout(spec, HELDOUT_DIR / f"{spec.name}.toml")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="versus-") as tmp:
        work = Path(tmp)
        log(f"{spec.name}: held-out {held.describe}")
        golden = spec.golden.load().feeds if spec.golden is not None else None
        fe = frontend.load(spec, golden, log=lambda s: None)
        raw = work / "raw.onnx"
        ir.save(fe.model, raw)
        transformer = sum(n.op_type in ("MatMul", "Gemm") for n in fe.model.graph) > sum(n.op_type == "Conv" for n in fe.model.graph)
        ours_measured, not_measured = our_flows(model, spec.name, out, ours, log)
        flows = [eager_flow(spec), *by_hand_flows(spec, raw, work, transformer, log), *ours_measured]
        eager = flows[0]
        reference = {g: [eager.run(f) for f in feeds] for g, feeds in held.groups.items()}
        log("accuracy on the held-out set …")
        acc = {f.name: accuracy(held, f, reference) for f in flows}
        log(f"timing {len(flows)} flows, interleaved, batches {batches}, {iters} iterations …")
        timed = time_flows(flows, held.timing, batches, iters, warmup)
        for f in flows:
            f.close()
    rows = []
    for f in flows:
        t = timed[f.name]
        rows.append({
            "flow": f.name, "group": f.group, "runtime": f.runtime, "precision": f.precision, "detail": f.detail,
            "p50_ms": {str(b): t[b]["p50"] for b in batches},
            "quartiles_ms": {str(b): [t[b]["p25"], t[b]["p75"]] for b in batches},
            "calls_per_sample": {str(b): t[b]["calls_per_sample"] for b in batches},
            "x_eager": {str(b): timed[eager.name][b]["p50"] / t[b]["p50"] for b in batches},
            "accuracy": acc[f.name],
        })
    bar = 0.9 if held.kind == "classifier" else 0.99
    result = {"model": spec.name, "heldout": held.describe, "accuracy_measure": held.measure, "accuracy_bar": bar,
              "batches": batches, "iters": iters, "warmup": warmup, "threads": 1, "rows": rows,
              "verdict": verdict(rows, batches, bar), "dominated": dominated(rows, batches), "not_measured": not_measured}
    (out / f"versus-{spec.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
