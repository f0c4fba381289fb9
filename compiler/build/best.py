"""`--precision best`: every precision the target allows, built through the same stages, the
passing ones timed in one interleaved run, the fastest installed — where "fastest" is decided
beyond noise: candidates whose median's 95 % interval overlaps the fastest's are a tie, and a
tie goes to the most accurate, then the smallest (`choose`). The manifest keeps the evidence.

Candidates are built into scratch (not commit points: a signal still stops the run) and share
export, passes and the validation reference through the stage cache. If none passes, the
candidate at the target's default precision is installed, marked failed (exit 1), as any failed
build is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from compiler import golden as golden_mod, spec as spec_mod
from compiler.artifact.read import read_manifest
from compiler.artifact.slot import OutputSlot
from compiler.artifact.write import finalize
from compiler.build.context import BuildOptions, BuildResult
from compiler.build.prepare import check_disjoint, default_out
from compiler.cache import Cache
from compiler.errors import BadInput
from compiler.progress import Progress
from compiler.spec import ModelSpec
from targets import load_profile


def build_best(model: str | ModelSpec, target: str, opts: BuildOptions, progress: Progress, run_build) -> BuildResult:
    from compiler.bench import bench_many

    profile = load_profile(target)
    spec = model if isinstance(model, ModelSpec) else spec_mod.resolve(model)
    out = opts.out or default_out(profile, spec)
    check_disjoint({"--out": out, "--golden": opts.golden_dir or golden_mod.GOLDEN_ROOT / spec.name})
    cache = Cache.open(opts.cache_dir, opts.use_cache)  # one memory store: candidates share export and passes
    candidates: list[dict[str, Any]] = []
    with OutputSlot(out, log=progress.info) as slot:
        built: dict[str, BuildResult] = {}
        refused: list[BadInput] = []
        for precision in profile.precisions:
            with progress.step(f"best: candidate {precision}"):
                try:
                    r = run_build(model, target, dataclasses.replace(opts, precision=precision, out=slot.work / precision,
                                                                     candidate=True), progress, cache)
                except BadInput as e:  # e.g. int8 without calibration data: that candidate only
                    refused.append(e)
                    candidates.append({"precision": precision, "passed": False, "failures": [f"not built: {e}"]})
                    progress.info(f"best: {precision} not built: {e}")
                    continue
            built[precision] = r
            candidates.append({"precision": precision, "passed": r.passed,
                               "failures": r.parity.failures() if r.parity is not None else [], **candidate_facts(r)})
        if not built:
            raise refused[0]
        passing = [p for p in built if built[p].passed and built[p].parity is not None]
        if not passing:
            shown = profile.default_precision if profile.default_precision in built else next(iter(built))
            failure = (f"no precision of target {profile.name!r} passes the golden gate for {spec.name!r}: "
                       + "; ".join(f"{c['precision']}: {', '.join(c['failures'])}" for c in candidates))
            best = {"chosen": None, "installed": shown, "criterion": "none passed; the target's default precision is "
                    "installed, marked failed", "candidates": candidates}
            return _install(slot, built[shown], best, progress, failure)
        batch, shapes = bench_batch(built[passing[0]].manifest)
        with progress.step(f"best: benchmark the passing candidates ({shapes}, interleaved, {BENCH_ITERS} runs each)"):
            timings = bench_many([built[p].out_dir for p in passing], [batch], iters=BENCH_ITERS, warmup=3)
        for c in candidates:
            t = next((t for t in timings if t["precision"] == c["precision"]), None)
            c["p50_ms"] = None if t is None else round(t["latency_ms"]["p50"], 4)
            c["p50_ci95_ms"] = None if t is None else [round(v, 4) for v in t["latency_ms"]["p50_ci95"]]
        chosen, tied = choose([c for c in candidates if c["precision"] in passing])
        progress.info(f"best: {chosen} (" + ", ".join(
            f"{c['precision']} {c['p50_ms']} ms [{c['p50_ci95_ms'][0]}, {c['p50_ci95_ms'][1]}]" if c["precision"] in passing
            else f"{c['precision']} failed" for c in candidates) + ")"
            + (f"; within noise of the fastest: {', '.join(tied)} — the most accurate chosen" if len(tied) > 1 else ""))
        # The choice rests on latencies measured in this run, so a `best` artifact is not
        # reproducible byte for byte the way a single-precision build is.
        ran = sum(1 for r in built.values() if not r.cache.get("export", "").startswith("hit"))
        best = {"chosen": chosen, "criterion": CRITERION.format(shapes=shapes), "bench_shapes": shapes,
                "bench_runs": BENCH_ITERS, "tied_with_fastest": tied, "candidates": candidates,
                "shared_stages": f"export and passes ran {ran} time(s) for {len(built)} candidate(s)"}
        return _install(slot, built[chosen], best, progress)


BENCH_ITERS = 40  # interleaved runs per candidate: enough for median intervals that separate real differences
CRITERION = ("lowest p50 latency ({shapes}) among passing precisions; candidates whose 95 % interval of the median "
             "overlaps the fastest's are within noise of it, and among those the most accurate (highest min cosine "
             "on golden and validation) wins, then the smallest engine")


def choose(passing: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The chosen precision, and the candidates tied with the fastest in the order of preference.

    A choice made inside benchmark noise flips between runs: every candidate whose median's
    interval overlaps the fastest's is a tie, and ties go to accuracy, then size, then p50."""
    fastest = min(passing, key=lambda c: c["p50_ms"])
    tied = [c for c in passing if c["p50_ci95_ms"][0] <= fastest["p50_ci95_ms"][1]
            and fastest["p50_ci95_ms"][0] <= c["p50_ci95_ms"][1]]
    ranked = sorted(tied, key=lambda c: (-(c.get("accuracy") or 0.0), c.get("engine_bytes") or 0, c["p50_ms"]))
    return ranked[0]["precision"], [c["precision"] for c in ranked]


def _install(slot: OutputSlot, result: BuildResult, best: dict[str, Any], progress: Progress,
             failure: str | None = None) -> BuildResult:
    manifest = read_manifest(result.out_dir)
    manifest["best"] = best
    finalize(result.out_dir, manifest, result.parity)
    installed = slot.install(result.out_dir, failed=failure is not None)
    progress.info(f"artifact: {installed}/ (best = {best['chosen'] or 'none passed'})")
    return BuildResult(installed, failure is None, result.parity, manifest, failure)


def bench_batch(manifest: dict[str, Any]) -> tuple[int | None, str]:
    """The batch `best` times its candidates at: 1 where the leading dims are dynamic, else the
    engine's own static shapes (a factory exported at batch 2 runs only at batch 2)."""
    inputs = manifest.get("interface", {}).get("inputs", [])
    if any(t["shape"] and not isinstance(t["shape"][0], int) for t in inputs):
        return 1, "batch 1"
    return None, "the engine's static input shapes"


def candidate_facts(r: BuildResult) -> dict[str, Any]:
    """What `best` reports per candidate: validation accuracy in the engine, the precision map
    (graph and, where the runtime reports it, the engine's own), float nodes and why, build time."""
    m = r.manifest
    facts: dict[str, Any] = {}
    if r.parity is not None and r.parity.validation:
        facts["validation_cosine"] = {g: round(min(o.cosine for o in rep.outputs.values()), 5)
                                      for g, rep in r.parity.validation.items()}
    graph = "fp32 graph"
    stats = r.calibration or {}
    floats = stats.get("fallback", {}).get("float_nodes") if stats.get("precision") == "int8" else stats.get("float_nodes")
    if stats.get("precision") == "int8":
        graph = f"{stats['quantized_nodes']} node(s) int8, {len(floats or [])} returned to float"
    elif stats.get("precision") == "fp16":
        graph = f"fp16 graph, {len(floats or [])} node(s) kept fp32"
    elif stats.get("precision") in ("int8-dynamic", "int4"):
        weights = "int8 weights, activations quantized at run time" if stats["precision"] == "int8-dynamic" else "4-bit weights"
        graph = f"{stats['matmuls'] - len(floats or [])} of {stats['matmuls']} weight(s) in {weights}"
    info = m.get("engine", {}).get("info", {})
    if info.get("runtime_precisions"):
        graph += "; engine runs " + ", ".join(f"{k} ×{v}" for k, v in sorted(info["runtime_precisions"].items()))
    elif info.get("inference_precision_hint"):
        graph += f"; engine hint {info['inference_precision_hint']}"
    facts["precision_map"] = graph
    facts["float_nodes"] = [{"node": n["node"], "why": n["why"]} for n in floats or []]
    facts["build_seconds"] = None if r.seconds is None else round(r.seconds, 3)
    facts["accuracy"] = accuracy(r)
    facts["engine_bytes"] = sum((r.out_dir / f).stat().st_size for f in m.get("engine", {}).get("files", [])
                                if (r.out_dir / f).is_file())
    return facts


def accuracy(r: BuildResult) -> float | None:
    """The candidate's worst cosine against the float model: every output, on golden and on every
    validation group (what `best` breaks ties on)."""
    if r.parity is None:
        return None
    reports = [r.parity, *(r.parity.validation or {}).values()]
    cosines = [o.cosine for rep in reports for o in rep.outputs.values() if o.cosine is not None]
    return round(min(cosines), 6) if cosines else None
