"""Stage `export`: the model (factory, `.pt2`, `.onnx`) → a checked ONNX IR model.

Reads: the spec, the golden inputs (what a PyTorch model is traced with). Writes
`ctx.exported`. Cached by the model's bytes (`cache.keys`), the export options, the trace
inputs, the project's code and the toolchain.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx_ir as ir

from compiler import frontend, ir as irh, torch_model
from compiler.build.context import BuildContext
from compiler.cache import OFF, Entry, cached, keys
from compiler.frontend import FrontendResult
from compiler.spec import SourceKind


def model_identity(ctx: BuildContext) -> dict:
    """The model as bytes: what its export reads besides the trace inputs."""
    spec = ctx.spec
    if spec.source_kind is SourceKind.ONNX:  # read (and checked) by the frontend first: its used weights
        return {"onnx": keys.onnx_model(irh.to_proto(ctx.exported.model))}
    if spec.source_kind is SourceKind.PT2:
        return {"pt2": keys.file_sha256(Path(spec.source))}
    if ctx.torch_model is None:
        ctx.torch_model = torch_model.load_torch(spec)
    module, examples = ctx.torch_model
    source = keys.factory_source(spec.source) if spec.source_kind is SourceKind.FACTORY else {}
    return {"factory": keys.torch_module(module, examples), "module": source}


def key(ctx: BuildContext) -> str:
    s = ctx.spec
    return keys.digest("export", keys.code_version(), keys.toolchain(), model_identity(ctx),
                       {"spec": s.sha256 if s.path is not None and s.path.suffix == ".toml" else None,  # not a path's hash
                        "export": repr(s.export), "trust_pickle": s.trust_pickle,
                        "inputs": repr(s.inputs), "outputs": repr(s.outputs)},
                       keys.arrays_sha256(ctx.golden.inputs))


def run(ctx: BuildContext) -> None:
    if ctx.spec.source_kind is SourceKind.ONNX:  # nothing to export: reading it is the stage
        ctx.exported = _load(ctx)
        ctx.keys["export"] = key(ctx)
        ctx.cache_report["export"] = OFF
        ctx.golden.check_against(ctx.exported.model)
        return
    def compute() -> tuple[FrontendResult, Entry]:
        fe = _load(ctx)
        return fe, Entry({"exporter": fe.exporter, "fallback_reason": fe.fallback_reason, "seconds": fe.seconds},
                         {"model.onnx": irh.to_proto(fe.model).SerializeToString()})

    def restore(entry: Entry) -> FrontendResult:
        f = entry.facts
        model = ir.serde.deserialize_model(onnx.load_from_string(entry.read("model.onnx")))
        ctx.progress.info(f"export: from the cache ({f['exporter']}, {irh.node_count(model)} nodes)")
        return FrontendResult(model, f["exporter"], f["fallback_reason"], f["seconds"])

    ctx.keys["export"] = k = key(ctx)
    ctx.exported, ctx.cache_report["export"] = cached(ctx.cache, "export", k, compute, restore)
    ctx.golden.check_against(ctx.exported.model)


def _load(ctx: BuildContext) -> FrontendResult:
    with ctx.progress.step(f"frontend: {ctx.spec.source}"):
        fe = frontend.load(ctx.spec, ctx.golden.inputs, log=ctx.progress.info, loaded=ctx.torch_model)
        ctx.progress.info(f"{fe.exporter} → {irh.node_count(fe.model)} nodes, opset {irh.opset(fe.model)}")
    return fe
