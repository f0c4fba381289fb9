"""Stage `optimize`: the target's pass pipeline over the exported model.

Reads: `ctx.exported`, the pipeline name, the ops the backend accepts. Writes `ctx.optimized`
and `ctx.model`. Cached by the export's key, the pipeline and the accepted ops — except with
`--verify-passes` or `--dump-ir`, whose point is to watch the passes run.
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnx_ir as ir
import onnx_ir.passes.common  # noqa: F401 - ir.passes.common

from compiler import ir as irh
from compiler.artifact.files import write_json
from compiler.artifact.slot import DUMP_MARKER, IR_DUMP
from compiler.build.context import BuildContext
from compiler.cache import Entry, cached, keys
from compiler.errors import ParityFailure
from compiler.passes import PassContext
from compiler.passes.manager import DumpIR, GoldenCheck, PipelineResult
from compiler.passes.manager import run as run_passes
from compiler.verify import compare


def key(ctx: BuildContext) -> str:
    return keys.digest("optimize", ctx.keys["export"], ctx.pipeline, sorted(type(ctx.backend).accepts))


def run(ctx: BuildContext) -> None:
    def compute() -> tuple[PipelineResult, Entry]:
        r = _run_passes(ctx)
        # every node named, uniquely: what the precision stage keeps in float, what `debug` and
        # --keep-float name, are node names (ONNX files often leave them empty)
        ir.passes.common.NameFixPass()(r.model)
        return r, Entry({"records": r.records, "fusions": r.fusions, "skipped": r.skipped},
                        {"model.onnx": irh.to_proto(r.model).SerializeToString()})

    def restore(entry: Entry) -> PipelineResult:
        f = entry.facts
        r = PipelineResult(ir.serde.deserialize_model(onnx.load_from_string(entry.read("model.onnx"))),
                           f["records"], f["fusions"], f["skipped"])
        ctx.progress.info(f"passes: from the cache ({irh.node_count(r.model)} nodes after {ctx.pipeline!r})")
        return r

    ctx.keys["optimize"] = k = key(ctx)
    watched = ctx.options.verify_passes or ctx.dump_slot is not None
    ctx.optimized, ctx.cache_report["optimize"] = cached(ctx.cache, "optimize", k, compute, restore, use=not watched)
    # later stages mutate the model they are given: they get a copy
    ctx.model = ir.serde.deserialize_model(irh.to_proto(ctx.optimized.model))
    ctx.golden.check_against(ctx.model)  # a pass must not rename or reshape the graph's interface


def _run_passes(ctx: BuildContext) -> PipelineResult:
    instruments: list = []
    if ctx.dump_slot is not None:
        ctx.dump_staging = ctx.dump_slot.staging()
        instruments.append(DumpIR(ctx.dump_staging))
    if ctx.options.verify_passes:
        instruments.append(_golden_check(ctx))
    model = ir.serde.deserialize_model(irh.to_proto(ctx.exported.model))
    with ctx.progress.step(f"passes: pipeline {ctx.pipeline!r}"):
        try:
            result = run_passes(model, ctx.pipeline, PassContext(type(ctx.backend).accepts), instruments, log=ctx.progress.info)
        except ParityFailure:  # --verify-passes named the pass: the dump is what to look at
            install_dump(ctx)
            raise
    return PipelineResult(result.model, copy.deepcopy(result.records), result.fusions, result.skipped)


def install_dump(ctx: BuildContext) -> None:
    """Swap the per-pass models in at --dump-ir (after the artifact, or with a pass's failure)."""
    if ctx.dump_slot is None or ctx.dump_staging is None:
        return
    write_json(ctx.dump_staging / DUMP_MARKER, {"written_by": "model-compiler", "kind": IR_DUMP, "model": ctx.spec.name,
                                                "pipeline": ctx.pipeline})
    ctx.dump_slot.install(ctx.dump_staging, commit=not ctx.options.candidate)
    ctx.progress.info(f"per-pass models: {ctx.dump_slot.final}/")


def _golden_check(ctx: BuildContext) -> GoldenCheck:
    """Per-pass verification at the fp32 tolerances: passes run before any precision change."""

    def failures(name: str, ref: np.ndarray, got: np.ndarray) -> list[str]:
        tol = ctx.golden.tolerances.for_output("fp32", name, ctx.spec.output_kind(name))
        return compare(name, ref, got, tol).failures

    return GoldenCheck(ctx.golden.inputs, ctx.golden.outputs, failures)
