"""Stage `install`: the manifest, the report and the seal, then the atomic swap into place.

Reads everything the stages wrote. Writes `ctx.manifest`, `ctx.installed`. Never cached: it is
the commit point of the run (unless the build is a `best` candidate written to scratch), and a
failed build goes beside a passed one (`NAME.failed`), never over it.
"""

from __future__ import annotations

import time

from compiler.artifact.write import finalize
from compiler.build import manifest as manifest_mod
from compiler.build.context import BuildContext
from compiler.build.optimize import install_dump


def run(ctx: BuildContext) -> None:
    ctx.manifest = manifest_mod.assemble(ctx)
    ctx.volatile["build_seconds"] = round(time.perf_counter() - ctx.started, 3)
    finalize(ctx.staging, ctx.manifest, ctx.parity, manifest_mod.volatile(ctx))
    ctx.installed = ctx.slot.install(ctx.staging, failed=ctx.status == "failed", commit=not ctx.options.candidate)
    install_dump(ctx)
    if ctx.options.candidate:
        ctx.progress.info(f"candidate {ctx.precision}: {ctx.status}")
    else:
        ctx.progress.info(f"artifact: {ctx.installed}/ ({ctx.status})")
