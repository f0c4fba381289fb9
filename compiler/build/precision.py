"""Stage `precision`: the validation set's float reference, then int8 / fp16 with per-node fallback.

Reads: `ctx.model` (optimized, float), the spec's calibration and validation data, the golden
set, the profile's quantization scheme. Writes `ctx.groups` (the validation set with the float
model's outputs on it; used again by `verify` for every reduced precision), `ctx.reduced` and
`ctx.model`. Both are cached: the reference by the optimized model and the validation data; the
reduced model by everything its calibration and fallback gate read.

The fallback gate runs in ONNX Runtime, or where the profile says ``precision_gate = "engine"``
(integer kernels that ORT's QDQ simulation does not reproduce, e.g. LiteRT's) in the target's
own engine compiled from each candidate.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from calibration import precision as precision_mod
from calibration import trt_cache
from calibration.fallback import Gate
from compiler import ir as irh, validation
from compiler.build.context import BuildContext, Reduced
from compiler.errors import ToolchainRefused
from compiler.toolchain import toolchain_step
from compiler.cache import Entry, cached, keys
from compiler.parity import check_parity, tolerance_of, variant_parity
from compiler.precision import GRAPH_REDUCED, Precision
from compiler.verify import ParityReport
from targets.base import Backend
from targets.ort import OrtRunner


def run(ctx: BuildContext) -> None:
    p = ctx.precision
    if ctx.spec.validation is not None and (p in GRAPH_REDUCED or (p.reduced and ctx.avail.can_run)):
        ctx.groups = _validation_groups(ctx)
    if p not in GRAPH_REDUCED:
        return
    policy = ctx.profile.precision_policy
    if (p is Precision.FP16 and policy.fp16 == "weights") or (p is Precision.INT8_DYNAMIC and policy.int8_dynamic == "weights"):
        ctx.progress.info(f"precision: {p} weights are stored by the backend; the graph stays fp32")
        return
    def compute() -> tuple[Reduced, Entry]:
        with ctx.progress.step(f"precision: {p}"):
            r = _reduce(ctx)
        return r, Entry({"stats": r.stats, "trt_cache": r.trt_cache, "float_nodes": r.float_nodes,
                         "gate_failures": r.gate_failures}, {"model.onnx": irh.to_proto(r.model).SerializeToString()})

    def restore(entry: Entry) -> Reduced:
        f = entry.facts
        model = ir.serde.deserialize_model(onnx.load_from_string(entry.read("model.onnx")))
        ctx.progress.info(f"precision: from the cache ({len(f['float_nodes'])} node(s) in float)")
        return Reduced(model, f["stats"], f["trt_cache"], f["float_nodes"], f["gate_failures"])

    ctx.keys["precision"] = k = _key(ctx)
    ctx.reduced, ctx.cache_report["precision"] = cached(ctx.cache, "precision", k, compute, restore)
    for f in ctx.reduced.gate_failures:
        ctx.progress.info(f"FAILED: {f}")
    ctx.model = ctx.reduced.model


def _key(ctx: BuildContext) -> str:
    spec, q = ctx.spec, ctx.profile.quantization
    calib = None
    if spec.calibration is not None and not (q is not None and q.weights_only):
        c = spec.calibration
        calib = [keys.arrays_sha256(b.feeds) for b in c.data.batches(c.batch_size, limit=c.samples)]
    evaluation = evaluation_identity(spec)
    gate = ctx.profile.option("precision_gate", "onnxruntime")
    return keys.digest("precision", ctx.keys["optimize"], ctx.precision, _profile_identity(ctx), ctx.options.calibrator,
                       ctx.spec.keep_float, ctx.options.fallback,
                       calib, ctx.keys.get("validation"), _golden_identity(ctx), evaluation, gate,
                       ctx.avail.versions if gate == "engine" else None)


def evaluation_identity(spec) -> list | None:
    """The labelled evaluation set's bytes (the task metric is part of every gate)."""
    if spec.evaluation is None:
        return None
    data = spec.evaluation.data.load()
    return [keys.arrays_sha256(data.feeds), None if data.labels is None else keys.array_sha256(data.labels)]


def _profile_identity(ctx: BuildContext) -> str | None:
    return keys.file_sha256(ctx.profile.path) if ctx.profile.path else None


def _golden_identity(ctx: BuildContext) -> dict[str, str]:
    d = ctx.golden.dir
    return {n: keys.file_sha256(d / n) for n in ("inputs.npz", "outputs.npz", "tolerances.toml", "meta.json") if (d / n).is_file()}


def _validation_groups(ctx: BuildContext) -> list[validation.Group]:
    """The validation set with the optimized float model's outputs on it (ORT): once per model,
    shared by every precision of it through the cache."""
    given = validation.inputs(ctx.spec)
    k = ctx.keys["validation"] = keys.digest("validation", ctx.keys["optimize"],
                                             [(label, [keys.arrays_sha256(b) for b in batches]) for label, batches in given])

    def compute() -> tuple[list[validation.Group], Entry]:
        path = ctx.slot.work / "validation_float" / "float.onnx"  # in the build's scratch, removed with it
        path.parent.mkdir(exist_ok=True)
        irh.save(ctx.model, path)
        groups = validation.load(ctx.spec, lambda: OrtRunner(path, "CPUExecutionProvider", threads=1), ctx.progress.info, given)
        buf = io.BytesIO()
        np.savez(buf, **{f"{g.label}/{i}/{name}": a for g in groups for i, r in enumerate(g.reference) for name, a in r.items()})
        outputs = sorted(groups[0].reference[0]) if groups and groups[0].reference else []
        return groups, Entry({"outputs": outputs}, {"reference.npz": buf.getvalue()})

    def restore(entry: Entry) -> list[validation.Group]:
        ref = np.load(io.BytesIO(entry.read("reference.npz")), allow_pickle=False)
        return [validation.Group(label, batches, [{name: ref[f"{label}/{i}/{name}"] for name in entry.facts["outputs"]}
                                                  for i in range(len(batches))]) for label, batches in given]

    groups, ctx.cache_report["validation"] = cached(ctx.cache, "validation", k, compute, restore)
    return groups


# the libraries that rewrite the graph in this stage: an exception inside them is their refusal
# of this graph (exit 2, named), not a crash of ours
CONVERTERS = ("onnxruntime/quantization", "onnxruntime/transformers", "onnx")


def _reduce(ctx: BuildContext) -> Reduced:
    """Calibrate and convert the optimized float model; int8 and fp16 fall back per node until
    the golden gate (and the task metric, and every validation group) holds."""
    work = ctx.slot.work / "precision"
    work.mkdir()
    float_path = work / "float.onnx"
    irh.save(ctx.model, float_path)
    # the engine judges where it runs here; where it does not, its host-side check (Core ML: the
    # MIL evaluator) judges golden beside ONNX Runtime
    engine_gate = ctx.backend if ctx.profile.option("precision_gate", "onnxruntime") == "engine" and (
        ctx.avail.can_run or type(ctx.backend).host_check is not Backend.host_check) else None
    gate = _gate(ctx, engine_gate)
    profile, precision = ctx.profile, ctx.precision
    weights_only = profile.quantization is not None and profile.quantization.weights_only
    if precision is Precision.INT8_DYNAMIC:
        with toolchain_step("onnxruntime's dynamic quantizer", "quantize", float_path, CONVERTERS):
            result = precision_mod.int8_dynamic(float_path, ctx.spec, profile, work, log=ctx.progress.info, gate=gate,
                                                golden_feeds=ctx.golden.inputs, fallback=ctx.options.fallback)
    elif precision is Precision.INT4:
        with toolchain_step("onnxruntime's MatMulNBits quantizer", "quantize", float_path, CONVERTERS):
            result = precision_mod.int4(float_path, ctx.spec, profile, work, log=ctx.progress.info, gate=gate,
                                        golden_feeds=ctx.golden.inputs, fallback=ctx.options.fallback,
                                        algorithm=profile.option("int4_algorithm", "rtn"))
    elif precision is Precision.FP16 or weights_only:
        # weight-only int8 (Core ML): the graph runs in fp16 and the backend compresses its weights;
        # the fp16 stage decides what stays fp32, the final parity judges the compressed engine
        with toolchain_step("onnxruntime's float16 converter", "convert", float_path, CONVERTERS):
            result = precision_mod.fp16(float_path, ctx.spec, profile, work, log=ctx.progress.info, gate=gate,
                                        golden_feeds=ctx.golden.inputs, fallback=ctx.options.fallback)
    else:
        with toolchain_step("onnxruntime's quantizer", "calibrate and quantize", float_path, CONVERTERS):
            result = precision_mod.int8(float_path, ctx.spec, profile, gate, work, method=ctx.options.calibrator,
                                        log=ctx.progress.info, fallback=ctx.options.fallback)
    if ctx.groups:  # → calibration.json: what the decisions were judged on besides golden
        result.stats["validation"] = {g.label: g.samples for g in ctx.groups}
    model = ir.load(result.model_path)
    ir.external_data.load_to_model(model)
    cache_text = None
    if result.ranges is not None and precision is Precision.INT8 and not weights_only:
        cache_text = trt_cache.render(result.ranges)
    return Reduced(model, result.stats, cache_text, result.float_nodes, _fallback_failures(result.stats, precision))


def _gate(ctx: BuildContext, engine_gate: Backend | None):
    golden, spec, precision, profile = ctx.golden, ctx.spec, ctx.precision, ctx.profile
    tolerance = tolerance_of(golden, spec, precision)

    def reports(path: Path) -> tuple[list[ParityReport], dict[str, ParityReport]]:
        """The candidate's parity on golden — in ORT, or in the engine and each of its variants
        (LiteRT's XNNPACK and reference int8 kernels round differently; both must pass) — and on
        the validation groups (in ORT, or in the engine)."""
        if engine_gate is None:
            with toolchain_step("onnxruntime", "run", path), OrtRunner(path, "CPUExecutionProvider", threads=1) as runner:
                return [check_parity(runner, golden, spec, precision)], validation.check(runner, ctx.groups, precision, tolerance)
        out = path.with_suffix(".engine")
        out.mkdir()
        candidate = ir.load(path)
        with toolchain_step(engine_gate.name, "compile", candidate):
            engine = engine_gate.compile(candidate, path, profile, precision, out)
        if not ctx.avail.can_run:
            with toolchain_step(engine_gate.name, "run the host-side check of", candidate), \
                    engine_gate.host_check(engine) as runner:
                host = check_parity(runner, golden, spec, precision)
            with toolchain_step("onnxruntime", "run", candidate), OrtRunner(path, "CPUExecutionProvider", threads=1) as runner:
                return [host, check_parity(runner, golden, spec, precision)], validation.check(runner, ctx.groups, precision,
                                                                                              tolerance)
        with toolchain_step(engine_gate.name, "run", candidate), engine_gate.load(engine, threads=1) as runner:
            main = check_parity(runner, golden, spec, precision)
            valid = validation.check(runner, ctx.groups, precision, tolerance)
        return [main, *variant_parity(engine_gate, engine, golden, spec, precision).values()], valid

    def gate(path: Path) -> Gate:
        try:
            reps, valid = reports(path)
        except ToolchainRefused as e:
            if engine_gate is None:
                raise
            # the engine refuses this candidate (LiteRT's converter on a causal mask's scales): a
            # failed probe, so the search returns more nodes to float — not the end of the build
            return Gate(False, [str(e)], f"{engine_gate.name} refused this candidate: {str(e)[:160]}")
        failures = [f for rep in reps for f in rep.failures()]
        failures += [f"validation {label}: {f}" for label, rep in valid.items() for f in rep.failures()]
        worst = {n: min((r.outputs[n] for r in reps), key=lambda o: o.cosine) for n in reps[0].outputs}

        def brief(o) -> str:
            return f"cos {o.cosine:.4f}" + (f", top-1 {o.topk_agreement:.2f}" if o.topk_agreement is not None else "")

        parts = [f"{n}: {brief(o)}" for n, o in worst.items()]
        metric = reps[0].metric
        if metric is not None:
            parts.append(f"{metric.name} {metric.engine:.4f} (ref {metric.reference:.4f})")
        for label, rep in valid.items():
            parts.append(f"validation {label}: " + ", ".join(brief(o) for o in rep.outputs.values()))
        return Gate(all(r.passed for r in reps) and all(v.passed for v in valid.values()), failures, "; ".join(parts))

    return gate


def _fallback_failures(stats: dict, precision: str) -> list[str]:
    """The fallback search's failure, as a build failure: the model left is (nearly) all float
    and still misses the gate, so labelling it `precision` would be a lie."""
    fb = stats.get("fallback")
    if fb is None or fb["passed"] or fb.get("disabled"):  # --no-fallback: the engine's own parity decides
        return []
    last = fb["rounds"][-1] if fb["rounds"] else {}
    return [f"{precision} misses the gate even with all {last.get('float_nodes', '?')} candidate node(s) back in float "
            f"({last.get('summary', 'no round ran')}); this is not a working {precision} build — choose another "
            "--precision, or another calibrator / calibration set"]
