"""Stage `compile`: assemble the artifact's files in staging and build the engine.

Reads: `ctx.model`, `ctx.reduced`, the golden set, the profile. Writes `ctx.staging` (model.onnx,
golden/, calibration.json / .cache), `ctx.model_files`, `ctx.engine`. The engine is cached by the
bytes of everything in staging before the backend runs, the profile, the precision and the
backend's versions; a hit restores exactly the files the backend wrote.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx_ir as ir

from compiler import ir as irh
from compiler.artifact.files import write_json
from compiler.artifact.read import ARTIFACT_GOLDEN, PROFILE_FILE, REFERENCE_FILE
from compiler.build.context import BuildContext
from compiler.toolchain import toolchain_step
from compiler.cache import Entry, cached, keys
from targets.base import Deferred, Engine

MODEL_FILE = "model.onnx"


def _listing(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): keys.file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def run(ctx: BuildContext) -> None:
    tmp = ctx.staging = ctx.slot.staging()
    ctx.model_files = [f.name for f in irh.save(ctx.model, tmp / MODEL_FILE)]
    ctx.golden.copy_to(tmp / ARTIFACT_GOLDEN)
    if ctx.profile.path is not None:  # the profile travels too: a user's own device file verifies anywhere
        shutil.copyfile(ctx.profile.path, tmp / PROFILE_FILE)
    if ctx.reduced is not None:
        # the float model the reduced one was made from: `debug` compares the engine with it
        irh.save(ir.serde.deserialize_model(irh.to_proto(ctx.optimized.model)), tmp / REFERENCE_FILE)
        stats = dict(ctx.reduced.stats)
        ctx.volatile["calibration_seconds"] = {k: stats.pop(k) for k in list(stats) if k.endswith("seconds")}
        write_json(tmp / "calibration.json", stats)
        if ctx.reduced.trt_cache is not None:
            (tmp / "calibration.cache").write_text(ctx.reduced.trt_cache)
    before = _listing(tmp)
    k = ctx.keys["compile"] = keys.digest("compile", keys.code_version(), keys.toolchain(), before, ctx.precision,
                                          keys.file_sha256(ctx.profile.path) if ctx.profile.path else None,
                                          ctx.avail.versions)

    def compute() -> tuple[Engine, Entry]:
        with ctx.progress.step(f"compile: {ctx.profile.backend} ({ctx.precision})"), \
                toolchain_step(ctx.backend.name, "compile", ctx.model):
            engine = ctx.backend.compile(ctx.model, tmp / MODEL_FILE, ctx.profile, ctx.precision, tmp)
        written = {n: (tmp / n).read_bytes() for n, h in _listing(tmp).items() if before.get(n) != h}
        return engine, Entry({"engine": engine.to_manifest(), "deferred": [dict(d.__dict__) for d in engine.deferred]}, written)

    def restore(entry: Entry) -> Engine:  # exactly the files the backend wrote
        for name in entry.names():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(entry.read(name))
        engine = Engine.from_manifest(tmp, entry.facts["engine"])
        engine.deferred = [Deferred(**d) for d in entry.facts["deferred"]]
        ctx.progress.info(f"compile: from the cache ({ctx.profile.backend}, {ctx.precision})")
        return engine

    ctx.engine, ctx.cache_report["compile"] = cached(ctx.cache, "compile", k, compute, restore)
