"""Stage `verify`: run the engine on golden (and, for a reduced precision, the validation set),
or the host-side check where the engine cannot run here; decide the build's status.

Reads: `ctx.engine`, the golden set, `ctx.groups`, `ctx.reduced`. Writes `ctx.parity`,
`ctx.verified_with`, `ctx.status`. Cached by the engine's bytes (the compile key and every file
in staging), the golden set, the validation data and the thread count: the same bytes on the
same runtime give the same verdict, so an unchanged build is not run again.
"""

from __future__ import annotations

import time

from compiler import validation
from compiler.artifact.files import write_json
from compiler.build.context import BuildContext
from compiler.build.precision import evaluation_identity
from compiler.toolchain import toolchain_step
from compiler.cache import Entry, cached, keys
from compiler.parity import check_parity, tolerance_of, variant_parity
from compiler.errors import CompilerError
from compiler.verify import ParityReport


def run(ctx: BuildContext) -> None:
    k = ctx.keys["verify"] = keys.digest("verify", ctx.keys["compile"], _files(ctx), ctx.keys.get("validation"),
                                         evaluation_identity(ctx.spec), ctx.threads, ctx.avail.can_run, ctx.precision,
                                         ctx.options.localize_seconds)

    def compute() -> tuple[tuple[ParityReport | None, str | None, dict | None], Entry]:
        t0 = time.perf_counter()
        parity, verified_with = _run(ctx)
        run_seconds = time.perf_counter() - t0
        debug = _localize(ctx, parity, run_seconds) if parity is not None and not parity.passed else None
        return (parity, verified_with, debug), Entry({"parity": None if parity is None else parity.as_dict(),
                                                      "verified_with": verified_with, "debug": debug})

    def restore(entry: Entry) -> tuple[ParityReport | None, str | None, dict | None]:
        f = entry.facts
        ctx.progress.info("verify: from the cache")
        return (None if f["parity"] is None else ParityReport.from_dict(f["parity"])), f["verified_with"], f.get("debug")

    (ctx.parity, ctx.verified_with, debug), ctx.cache_report["verify"] = cached(ctx.cache, "verify", k, compute, restore)
    if debug is not None:
        write_json(ctx.staging / "debug.json", debug)
    gate_failures = ctx.reduced.gate_failures if ctx.reduced is not None else []
    if ctx.parity is not None:
        ctx.parity.precision_gate = list(gate_failures)
        ctx.progress.info("PASSED" if ctx.parity.passed else "FAILED: " + "; ".join(ctx.parity.failures()))
    ctx.status = "unverified" if ctx.parity is None else ("passed" if ctx.parity.passed else "failed")
    if gate_failures:  # not a working build of its precision, whether or not the engine ran here
        ctx.status = "failed"


def _localize(ctx: BuildContext, parity: ParityReport, run_seconds: float) -> dict | None:
    """A failed build names the first divergent layer itself, within `--localize-seconds`: the
    observed engine is one more compile and one run on golden beside the float reference, so it
    starts only if the build's own compile and run predict it fits (a compile restored from the
    cache predicts nothing and is not counted), and it stops between its steps once over the
    bound. The answer goes into parity.json, the whole comparison into debug.json."""
    bound = ctx.options.localize_seconds
    if bound <= 0:
        return None
    from compiler.debug.localize import localize, summary
    from compiler.debug.observe import OverTimeBound

    predicted = ctx.stage_seconds.get("compile", 0.0) + 2 * run_seconds
    if predicted > bound:
        why = (f"not run: the build's compile and engine run predict {predicted:.0f} s, over the {bound:g} s bound "
               f"(--localize-seconds); `debug --artifact` on the artifact runs it without one")
        ctx.progress.info(f"localize: {why}")
        parity.localization = {"first_divergence": None, "error": why}
        return None
    try:
        with ctx.progress.step("localize: the first layer where the engine departs from the float model"):
            debug = localize(ctx.model, ctx.optimized.model, ctx.golden, ctx.backend, ctx.profile, ctx.precision,
                             ctx.avail.can_run, ctx.slot.work / "localize", deadline=time.perf_counter() + bound)
    except OverTimeBound as e:
        why = f"stopped: {e} (--localize-seconds {bound:g}); `debug --artifact` on the artifact runs it without one"
        parity.localization = {"first_divergence": None, "error": why}
        ctx.progress.info(f"localize: {why}")
        return None
    except CompilerError as e:  # the observed engine could not be built: say so, the build's verdict stands
        parity.localization = {"first_divergence": None, "error": str(e)}
        return None
    parity.localization = {"first_divergence": debug["first_divergence"], "summary": summary(debug),
                           "observed": len(debug["tensors"]), "unobserved": len(debug["unobserved"])}
    ctx.progress.info(summary(debug))
    return debug


def _files(ctx: BuildContext) -> dict[str, str]:
    root = ctx.staging
    return {p.relative_to(root).as_posix(): keys.file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _run(ctx: BuildContext) -> tuple[ParityReport | None, str | None]:
    backend, engine, model = ctx.backend, ctx.engine, ctx.model
    runner, verified_with = None, None
    with toolchain_step(backend.name, "load the engine of", model):
        if ctx.avail.can_run:
            runner, verified_with = backend.load(engine, threads=ctx.threads), "engine"
        elif (runner := backend.host_check(engine)) is not None:
            verified_with = f"host-side check: {engine.info.get('host_check', 'see backend')}; engine verification deferred"
    if runner is None:
        return None, None
    label = "engine" if verified_with == "engine" else "host-side check, engine deferred"
    with ctx.progress.step(f"verify against golden ({label})"), runner, toolchain_step(backend.name, "run", model):
        parity = check_parity(runner, ctx.golden, ctx.spec, ctx.precision)
        if ctx.groups and verified_with == "engine":
            parity.validation = validation.check(runner, ctx.groups, ctx.precision,
                                                 tolerance_of(ctx.golden, ctx.spec, ctx.precision))
    if verified_with == "engine":
        with toolchain_step(backend.name, "run", model):
            parity.variants = variant_parity(backend, engine, ctx.golden, ctx.spec, ctx.precision, ctx.threads,
                                             step=ctx.progress.step)
    return parity, verified_with
