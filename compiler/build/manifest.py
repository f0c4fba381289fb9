"""The manifest of a built artifact, assembled in one place from the build context.

Every key here is a function of the build's inputs and toolchain (the volatile facts — times,
host, cache hits, where the golden set was — go to build.json); `artifact.write.finalize` adds
the file table and the seal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compiler import ir as irh, spec as spec_mod
from compiler.artifact.files import sha256_file
from compiler.artifact.read import ARTIFACT_GOLDEN
from compiler.artifact.write import SCHEMA
from compiler.build.context import BuildContext
from compiler.cache import keys


def assemble(ctx: BuildContext) -> dict[str, Any]:
    spec, profile, fe, opt, model, golden = ctx.spec, ctx.profile, ctx.exported, ctx.optimized, ctx.model, ctx.golden
    manifest: dict[str, Any] = {
        "schema": SCHEMA,
        "status": ctx.status,
        "model": {
            "name": spec.name,
            "source": (spec_mod.portable_path(Path(spec.source))
                       if spec.source_kind in (spec_mod.SourceKind.ONNX, spec_mod.SourceKind.PT2) else spec.source),
            "source_kind": spec.source_kind.value,
            "spec": spec_mod.portable_path(spec.path) if spec.path and spec.path.suffix == ".toml" else None,
            "spec_sha256": spec.sha256,
            "outputs": {o.name: o.kind.value for o in spec.outputs},
        },
        "target": {
            "name": profile.name,
            "backend": profile.backend,
            "device": {"name": profile.device.name, "arch": profile.device.arch},
            "profile_sha256": sha256_file(profile.path) if profile.path else None,
        },
        "precision": ctx.precision.value,
        "toolchain": {**keys.toolchain(), **ctx.avail.versions},
        "frontend": {"exporter": fe.exporter, "fallback_reason": fe.fallback_reason, "opset": irh.opset(fe.model)},
        "interface": {"inputs": [t.as_dict() for t in irh.graph_inputs(model)],
                      "outputs": [t.as_dict() for t in irh.graph_outputs(model)]},
        "model_files": ctx.model_files,
        "engine": ctx.engine.to_manifest(),
        "deferred": [dict(d.__dict__) for d in ctx.engine.deferred],
        "golden": {
            "dir": ARTIFACT_GOLDEN,  # a copy inside the artifact: it verifies wherever it is copied
            "inputs_sha256": sha256_file(golden.dir / "inputs.npz"),
            "outputs_sha256": sha256_file(golden.dir / "outputs.npz"),
            "samples": golden.samples,
            "reference": golden.meta.get("reference", "given"),
        },
        "node_count": {"exported": irh.node_count(fe.model), "optimized": irh.node_count(opt.model),
                       "final": irh.node_count(model)},
        "ops": {"exported": irh.op_histogram(fe.model), "optimized": irh.op_histogram(opt.model),
                "final": irh.op_histogram(model)},
        "pipeline": {"name": ctx.pipeline, "verified_each_pass": ctx.options.verify_passes,
                     "fusions": opt.fusions, "skipped": opt.skipped},
        "passes": [{k: v for k, v in r.items() if k != "seconds"} for r in opt.records],
        "verified_with": ctx.verified_with,
    }
    if ctx.reduced is not None:
        st = ctx.reduced.stats
        manifest["calibration"] = {"calibrator": st.get("calibrator"), "samples": st.get("samples"), "preset": st.get("preset"),
                                   "float_nodes": [n["node"] for n in ctx.reduced.float_nodes]}
        if ctx.reduced.gate_failures:
            manifest["calibration"]["gate_failures"] = ctx.reduced.gate_failures
    return manifest


def volatile(ctx: BuildContext) -> dict[str, Any]:
    """build.json: timings, cache hits and where the inputs were."""
    return {**ctx.volatile,
            "frontend_seconds": round(ctx.exported.seconds, 3),
            "pass_seconds": [{"name": r["name"], "phase": r["phase"], "seconds": r.get("seconds")} for r in ctx.optimized.records],
            "stage_seconds": {k: round(v, 3) for k, v in ctx.stage_seconds.items()},
            "cache": {"directory": str(ctx.cache.directory) if ctx.cache.directory else None, "stages": dict(ctx.cache_report)},
            }

