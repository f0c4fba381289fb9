"""Entry points the build calls: `int8()` and `fp16()` turn a float model file into a reduced-
precision one, with the statistics and decisions the artifact records.

The gate (does a candidate model still meet the golden tolerance / task metric?) is passed in
by the caller, so this package knows nothing of golden files or backends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import onnx_ir as ir

from calibration import fp16 as fp16_mod
from calibration import qdq, ranges, sensitivity, smooth, surgery
from calibration.data import checked_batches
from calibration.fallback import FallbackResult, Gate, search
from compiler import ir as irh
from compiler.datasets.samples import Samples
from compiler.errors import BadInput
from compiler.profile import TargetProfile
from compiler.spec import ModelSpec

SENSITIVITY_BATCHES = 2


@dataclass
class PrecisionResult:
    model_path: Path
    stats: dict[str, Any]  # → calibration.json
    ranges: ranges.Ranges | None = None
    float_nodes: list[dict[str, Any]] = field(default_factory=list)


def _require_calibration(spec: ModelSpec) -> None:
    if spec.calibration is None:
        raise BadInput(
            f"model {spec.name!r} names no calibration data: add a [calibration] table to "
            f"{spec.path or 'its spec'} (images, sentences, npz or python source)."
        )


def _calib_ranges(model_path: Path, inputs: list[irh.TensorInfo], spec: ModelSpec, method: str,
                  op_types: tuple[str, ...], symmetric: bool, percentile: float,
                  log: Callable[[str], None]) -> ranges.Ranges:
    _require_calibration(spec)
    c = spec.calibration
    batches = checked_batches(c.data, inputs, c.samples, c.batch_size)
    axes = dict(c.data.batch_axes)  # a state input (layers, batch, hidden) may come first
    return ranges.collect(model_path, batches, method, op_types, symmetric, percentile, log,
                          count=lambda f: len(Samples(f, axes=axes)))


def _check_keep(keep: tuple[str, ...], model: onnx.ModelProto) -> None:
    names = {n.name for n in model.graph.node}
    unknown = [n for n in keep if n not in names]
    if unknown:
        raise BadInput(f"keep_float names node(s) {unknown} that the optimized graph does not have (the names `debug` "
                       "reports are the ones to use).")


def _single(build: Callable[[list[str], Path], onnx.ModelProto], gate: Callable[[Path], Gate], work: Path,
            log: Callable[[str], None]) -> FallbackResult:
    """--no-fallback: the model as asked, judged once, nothing returned to float."""
    path = work / "no_fallback.onnx"
    build([], path)
    g = gate(path)
    log(f"fallback disabled: {'passes' if g.passed else 'fails'} the gate ({g.summary})")
    return FallbackResult(path, [], [{"float_nodes": 0, "passed": g.passed, "summary": g.summary}], g.passed)


MAX_REPAIRS = 8


def _runnable_int8(model_path: Path, out: Path, r: ranges.Ranges, scheme, helpers: set[str], float_model: onnx.ModelProto,
                   feeds: dict, log: Callable[[str], None]) -> tuple[onnx.ModelProto, dict[str, str]]:
    """ORT's quantizer, then the check that ONNX Runtime loads and runs what it wrote: on some
    graphs it writes a QuantizeLinear whose zero point type disagrees with its output type (the
    expanded Attention of ONNX's node cases). Nodes the refusal names (by node or tensor name) stay
    float and it quantizes again; a refusal naming none leaves every node float."""
    from compiler import ortsession
    from compiler.errors import first_line, is_toolchain_exception

    refused: dict[str, str] = {}
    for _ in range(MAX_REPAIRS):
        full = qdq.quantize(model_path, out, r, scheme, exclude=sorted(helpers | set(refused)))
        try:
            sess = ortsession.session(full, level="disabled")
            sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
            return full, refused
        except Exception as e:  # noqa: BLE001 - a refusal is what this repairs; our own bugs re-raise
            if not is_toolchain_exception(e):
                raise
            text = " ".join(str(e).split())
            left = [n for n in float_model.graph.node if n.name not in refused and n.name not in helpers]
            named = [n.name for n in left if any(len(t) > 2 and t in text for t in [n.name, *n.output])]
            why = f"ONNX Runtime refuses the quantizer's graph around it: {first_line(e)[:200]}"
            if not named:
                named = [n.name for n in left]
                why = f"ONNX Runtime refuses the quantizer's graph and names no node, so nothing is quantized: {first_line(e)[:200]}"
            if not named:
                raise
            log(f"int8: {len(named)} node(s) stay float — {why}")
            refused.update({n: why for n in named})
    raise RuntimeError(f"int8: ONNX Runtime still refuses the quantized model after {MAX_REPAIRS} repairs")


def int8(model_path: Path, spec: ModelSpec, profile: TargetProfile, gate: Callable[[Path], Gate], work: Path,
         method: str | None = None, log: Callable[[str], None] = lambda s: None, fallback: bool = True) -> PrecisionResult:
    scheme = profile.quantization
    if scheme is None:
        raise BadInput(f"target {profile.name!r} has no [quantization] preset in {profile.path}.")
    method = method or scheme.calibrator
    t0 = time.perf_counter()
    inputs = irh.graph_inputs(ir.load(model_path))
    equalized = None
    if scheme.equalize:
        _require_calibration(spec)
        c = spec.calibration
        equalized = smooth.equalize(onnx.load(str(model_path)), checked_batches(c.data, inputs, c.samples, c.batch_size),
                                    scheme.outlier_ratio)
        model_path = work / "equalized.onnx"
        onnx.save(equalized.model, str(model_path))
        smoothed = [g for g in equalized.inputs if g.alpha is not None]
        if equalized.inputs:
            log(f"equalization: {len(smoothed)} of {len(equalized.inputs)} MatMul input(s) smoothed "
                f"({sum(g.folded_into is not None for g in smoothed)} folded into their LayerNormalization), "
                f"{len(equalized.outputs)} output(s) with outlier channels scaled, in {time.perf_counter() - t0:.1f} s")
    r = _calib_ranges(model_path, inputs, spec, method, scheme.op_types, scheme.activation_symmetric, scheme.percentile, log)
    float_model = onnx.load(str(model_path))
    if folded := ranges.fold_activations(float_model, r):
        log(f"{len(folded)} tensor(s) take the range of the Relu/Clip that reads them")
    t_calib = time.perf_counter() - t0

    # the equalization's scaling Muls compute in float: quantized, they would undo it
    helpers = set(equalized.float_nodes()) if equalized else set()
    inits = {i.name for i in float_model.graph.initializer}
    runtime_weights = {n.name: f"{n.op_type} with weights computed at run time: the {scheme.preset!r} preset's runtime has no "
                       "integer kernel for it" for n in float_model.graph.node
                       if n.op_type in scheme.const_weights_only and len(n.input) > 1 and n.input[1] not in inits}
    helpers |= set(runtime_weights)
    first_feeds = next(checked_batches(spec.calibration.data, inputs, spec.calibration.batch_size,
                                       spec.calibration.batch_size))
    full, refused = _runnable_int8(model_path, work / "int8_full.onnx", r, scheme, helpers, float_model, first_feeds, log)
    helpers |= set(refused)
    quantized = [n for n in qdq.quantized_nodes(full, float_model, scheme.op_types) if n not in helpers]
    if rewired := qdq.float_readers_read_float(full, set(quantized)):
        onnx.save(full, str(work / "int8_full.onnx"))
        log(f"{len(rewired)} float-produced tensor(s) quantized for their int8 readers stay float for their float readers")

    # Nodes touching a tensor whose range no int8 scale can carry (an additive mask's -3.4e38)
    # are float from the start: quantized, they are useless, and LiteRT aborts the process on
    # the requantization multipliers they produce.
    unbounded = {t for t, v in r.as_dict().items() if max(abs(v["min"]), abs(v["max"])) >= ranges.HISTOGRAM_LIMIT}
    f_nodes = {n.name: n for n in float_model.graph.node}
    forced = [n for n in quantized if unbounded & {*f_nodes[n].input, *f_nodes[n].output}]
    if forced:
        log(f"{len(forced)} node(s) kept in float: their tensors reach ±{ranges.HISTOGRAM_LIMIT:.0e} (masks)")
    _check_keep(spec.keep_float, float_model)
    kept = [n for n in spec.keep_float if n in quantized and n not in forced]
    if kept:
        log(f"{len(kept)} node(s) kept in float by keep_float: {', '.join(kept)}")
    if already := [n for n in spec.keep_float if n not in quantized]:
        log(f"keep_float: {', '.join(already)} compute in float anyway (not quantized by the {scheme.preset!r} preset)")
    forced_why = {n: f"reads or writes a tensor whose calibrated range reaches ±{ranges.HISTOGRAM_LIMIT:.0e} (an additive "
                     "mask): no int8 scale carries it" for n in forced}
    forced_why.update({n: "kept in float by keep_float (the spec's [precision] or --keep-float)" for n in kept})
    forced = forced + kept

    def build(exclude: list[str], out: Path) -> onnx.ModelProto:
        exclude = forced + exclude
        m = surgery.revert(full, float_model, exclude, quantized, scheme.fallback_last) if exclude else full
        onnx.save(m, str(out))
        return m

    feeds = list(checked_batches(spec.calibration.data, inputs,
                                 spec.calibration.batch_size * SENSITIVITY_BATCHES, spec.calibration.batch_size))
    t1 = time.perf_counter()
    if fallback:
        ranked = sensitivity.last(sensitivity.rank(float_model, full, [n for n in quantized if n not in forced], feeds, log),
                                  scheme.fallback_last)
        log(f"sensitivity of {len(ranked)} quantized nodes in {time.perf_counter() - t1:.1f} s"
            + (f"; worst: {ranked[0].node} ({ranked[0].snr_db:.1f} dB alone)" if ranked else ""))
        result = search(ranked, build, gate, work, log)
    else:
        ranked = []
        result = _single(build, gate, work, log)
    chosen = onnx.load(str(result.model_path))
    if identity := qdq.drop_identity_activations(chosen):
        onnx.save(chosen, str(result.model_path))
        log(f"{len(identity)} Relu/Clip node(s) removed: their dequantized input already lies within their bounds")
    float_nodes = [
        {"node": n, "op_type": f_nodes[n].op_type, "why": why} for n, why in {**runtime_weights, **refused}.items()
        if n in f_nodes and f_nodes[n].op_type in scheme.op_types
    ] + [
        {"node": n, "op_type": f_nodes[n].op_type, "why": forced_why[n]} for n in forced
    ] + [
        {"node": s.node, "op_type": s.op_type, "snr_db_alone": round(s.snr_db, 2),
         "why": f"rank {i + 1} of {len(ranked)} by sensitivity: quantized alone its outputs reach only "
                f"{s.snr_db:.1f} dB SNR; returned to float so the gate holds"}
        for i, s in enumerate(result.excluded)
    ]
    stats = {
        "precision": "int8",
        "calibrator": method,
        "preset": scheme.preset,
        "preset_source": scheme.source,
        "scheme": {"activation_type": scheme.activation_type, "activation_symmetric": scheme.activation_symmetric,
                   "weight_type": scheme.weight_type, "weight_symmetric": scheme.weight_symmetric,
                   "per_channel": scheme.per_channel, "op_types": list(scheme.op_types),
                   "equalize": scheme.equalize},
        "samples": r.samples,
        "calibration_seconds": round(t_calib, 3),
        "total_seconds": round(time.perf_counter() - t0, 3),
        "quantized_nodes": len(quantized) - len(forced) - len(result.excluded),
        "identity_activations_removed": identity,
        "fallback": {"passed": result.passed, "disabled": not fallback, "last": list(scheme.fallback_last),
                     "float_nodes": float_nodes, "rounds": result.rounds,
                     "sensitivity": [{"node": s.node, "op_type": s.op_type, "snr_db_alone": round(s.snr_db, 2)} for s in ranked]},
        "ranges": r.as_dict(),
    }
    if equalized is not None:
        stats["equalization"] = {"outlier_ratio": scheme.outlier_ratio, "alphas": list(smooth.ALPHAS), **equalized.summary()}
    return PrecisionResult(result.model_path, stats, r, float_nodes)


def fp16(model_path: Path, spec: ModelSpec, profile: TargetProfile, work: Path,
         log: Callable[[str], None] = lambda s: None, gate: Callable[[Path], Gate] | None = None,
         golden_feeds: dict | None = None, fallback: bool = True) -> PrecisionResult:
    """Range analysis decides the first keep-fp32 list; if `gate` fails on that model, nodes are
    ranked by the error they add in fp16 (on calibration data, else the golden inputs) and the
    worst go back to fp32 until the gate holds (`fallback.search`)."""
    policy = profile.precision_policy
    t0 = time.perf_counter()
    r = None
    inputs = irh.graph_inputs(ir.load(model_path))
    if spec.calibration is not None:
        r = _calib_ranges(model_path, inputs, spec, "minmax", (), False, 100.0, log)
    model = onnx.load(str(model_path))
    keep = fp16_mod.keep_fp32_nodes(model, r, policy) if r is not None else {}
    _check_keep(spec.keep_float, model)
    for n in spec.keep_float:
        keep.setdefault(n, "kept in float by keep_float (the spec's [precision] or --keep-float)")
    out = work / "fp16.onnx"
    first = fp16_mod.runnable(model, policy, keep, golden_feeds or {}, log)
    onnx.save(first, str(out))
    log(f"fp16: {len(keep)} node(s) kept in fp32 (range analysis, keep_float, what ONNX Runtime cannot run in fp16); "
        f"ops kept by policy: {list(policy.keep_fp32_ops)}")
    float_nodes: list[dict[str, Any]] = [{"node": n, "why": why} for n, why in keep.items()]

    def build(extra: list[str], path: Path) -> onnx.ModelProto:
        m = fp16_mod.convert(onnx.load(str(model_path)), policy, list(keep) + extra)  # `keep` runs in ORT
        onnx.save(m, str(path))
        return m

    out, fell_back, fallback_rec = _judge(
        out, gate, fallback, build, lambda feeds: fp16_mod.rank_by_error_growth(model, first, set(keep), feeds),
        _ranking_feeds(spec, inputs, golden_feeds), work, log, "fp16", "after range analysis", "node", "fp32")
    float_nodes += fell_back
    stats = {
        "precision": "fp16",
        "calibrator": "minmax" if r is not None else None,
        "samples": r.samples if r is not None else 0,
        "range_analysis": r is not None,
        "keep_fp32_ops": list(policy.keep_fp32_ops),
        "keep_io_types": policy.keep_io_types,
        "fp16_max_abs": policy.fp16_max_abs,
        "float_nodes": float_nodes,
        "total_seconds": round(time.perf_counter() - t0, 3),
        "ranges": r.as_dict() if r is not None else {},
    }
    if fallback_rec is not None:
        stats["fallback"] = fallback_rec
    return PrecisionResult(out, stats, r, float_nodes)


def int4(model_path: Path, spec: ModelSpec, profile: TargetProfile, work: Path,
         log: Callable[[str], None] = lambda s: None, gate: Callable[[Path], Gate] | None = None,
         golden_feeds: dict | None = None, fallback: bool = True, algorithm: str = "rtn") -> PrecisionResult:
    """Weight-only int4 (`calibration.int4`): every eligible MatMul weight in 4-bit blocks; if
    `gate` fails, MatMuls are ranked by the error each adds (on calibration data, else the golden
    inputs) and the worst return to float until it holds (`fallback.search`)."""
    from calibration import int4 as int4_mod

    t0 = time.perf_counter()
    model, keep, eligible = _weights_to_quantize(
        model_path, spec, int4_mod.candidates,
        f"int4 quantizes MatMul weights and embedding tables (constant, 2-D, ≥ {int4_mod.MIN_K} rows) and "
        f"{spec.name!r} has none; choose another --precision.")

    def build(extra: list[str], path: Path) -> onnx.ModelProto:
        m = int4_mod.quantize(onnx.load(str(model_path)), algorithm, keep + extra)
        onnx.save(m, str(path))
        return m

    out = work / "int4.onnx"
    first = build([], out)
    log(f"int4 ({algorithm}, block {int4_mod.BLOCK_SIZE}): {len(eligible) - len(keep)} of {len(eligible)} weight(s) "
        f"in 4 bits; initializers {int4_mod.weight_bytes(model) / 2**20:.1f} → {int4_mod.weight_bytes(first) / 2**20:.1f} MiB")
    float_nodes: list[dict[str, Any]] = [{"node": n, "why": "kept in float by keep_float"} for n in keep]
    out, fell_back, fallback_rec = _judge(
        out, gate, fallback, build, lambda feeds: int4_mod.rank(model, first, feeds),
        _ranking_feeds(spec, irh.graph_inputs(ir.load(model_path)), golden_feeds), work, log, "int4", "", "weight", "float")
    float_nodes += fell_back
    final = onnx.load(str(out))
    stats = {
        "precision": "int4",
        "algorithm": algorithm,
        "block_size": int4_mod.BLOCK_SIZE,
        "weight_only": True,
        "matmuls": len(eligible),
        "float_nodes": float_nodes,
        "initializer_bytes": {"float": int4_mod.weight_bytes(model), "int4": int4_mod.weight_bytes(final)},
        "total_seconds": round(time.perf_counter() - t0, 3),
    }
    if fallback_rec is not None:
        stats["fallback"] = fallback_rec
    return PrecisionResult(out, stats, None, float_nodes)


def int8_dynamic(model_path: Path, spec: ModelSpec, profile: TargetProfile, work: Path,
                 log: Callable[[str], None] = lambda s: None, gate: Callable[[Path], Gate] | None = None,
                 golden_feeds: dict | None = None, fallback: bool = True) -> PrecisionResult:
    """Dynamic int8 (`calibration.dynamic`): every MatMul with a constant weight gets int8 weights
    per channel and activations quantized at run time; if `gate` fails, MatMuls are ranked by the
    error each adds and the worst return to float until it holds (`fallback.search`)."""
    from calibration import dynamic

    t0 = time.perf_counter()
    model, keep, eligible = _weights_to_quantize(
        model_path, spec, dynamic.candidates,
        f"int8-dynamic quantizes MatMuls with a constant 2-D weight and {spec.name!r} has none; "
        "choose another --precision (int8 quantizes Conv too, with calibration data).")

    def build(extra: list[str], path: Path) -> onnx.ModelProto:
        return dynamic.quantize(model_path, path, keep + extra)

    out = work / "int8_dynamic.onnx"
    first = build([], out)
    log(f"int8-dynamic: {len(eligible) - len(keep)} of {len(eligible)} MatMul(s) with int8 weights per channel, "
        "activations quantized at run time")
    float_nodes: list[dict[str, Any]] = [{"node": n, "why": "kept in float by keep_float"} for n in keep]
    out, fell_back, fallback_rec = _judge(
        out, gate, fallback, build, lambda feeds: dynamic.rank(model, first, feeds),
        _ranking_feeds(spec, irh.graph_inputs(ir.load(model_path)), golden_feeds), work, log, "int8-dynamic", "",
        "weight", "float")
    float_nodes += fell_back
    stats = {
        "precision": "int8-dynamic",
        "scheme": {"weights": "int8, symmetric, per output channel", "activations": "int8 per tensor, range of each "
                   "run's own batch (DynamicQuantizeLinear)", "op_types": list(dynamic.OPS)},
        "matmuls": len(eligible),
        "quantized_nodes": len(eligible) - len(float_nodes),
        "float_nodes": float_nodes,
        "total_seconds": round(time.perf_counter() - t0, 3),
    }
    if fallback_rec is not None:
        stats["fallback"] = fallback_rec
    return PrecisionResult(out, stats, None, float_nodes)


def _weights_to_quantize(model_path: Path, spec: ModelSpec, candidates: Callable[[onnx.ModelProto], list[onnx.NodeProto]],
                         none: str) -> tuple[onnx.ModelProto, list[str], list[onnx.NodeProto]]:
    """The weight quantizers' start (int4, int8-dynamic): the float model, the spec's keep_float
    (checked against it) and the nodes the quantizer takes; refused with `none` if it takes none."""
    model = onnx.load(str(model_path))
    _check_keep(spec.keep_float, model)
    eligible = candidates(model)
    if not eligible:
        raise BadInput(none)
    return model, list(spec.keep_float), eligible


def _ranking_feeds(spec: ModelSpec, inputs: list[irh.TensorInfo], golden_feeds: dict | None) -> Callable[[], list[dict]]:
    """What the fallback ranks nodes on: calibration data, else the golden inputs (read only if needed)."""
    def feeds() -> list[dict]:
        if spec.calibration is None:
            return [golden_feeds or {}]
        c = spec.calibration
        return list(checked_batches(c.data, inputs, c.batch_size * SENSITIVITY_BATCHES, c.batch_size))
    return feeds


def _judge(out: Path, gate: Callable[[Path], Gate] | None, fallback: bool, build: Callable[[list[str], Path], onnx.ModelProto],
           rank: Callable[[list[dict]], list], feeds: Callable[[], list[dict]], work: Path, log: Callable[[str], None],
           precision: str, stage: str, unit: str, kept_in: str) -> tuple[Path, list[dict[str, Any]], dict | None]:
    """The gate on the reduced model `out`; if it fails (and fallback is on), nodes ranked by the
    error they add return to `kept_in` until it holds (`fallback.search`). Returns the model, the
    nodes returned with why, and the fallback record for the stats."""
    if gate is None:
        return out, [], None
    if not fallback:
        g = gate(out)
        log(f"fallback disabled: {'passes' if g.passed else 'fails'} the gate ({g.summary})")
        return out, [], {"passed": g.passed, "disabled": True, "rounds": [{"float_nodes": 0, "passed": g.passed, "summary": g.summary}]}
    g = gate(out)
    if g.passed:
        return out, [], None
    log(f"{precision} fails the gate{' ' + stage if stage else ''} ({g.summary}); ranking {unit}s by the error they add")
    ranked = rank(feeds())
    result = search(ranked, build, gate, work, log)
    returned = [{"node": s.node, "op_type": s.op_type,
                 "why": f"rank {i + 1} of {len(ranked)} by error added in {precision} ({-s.snr_db:.1f} dB of SNR lost "
                        f"across the {s.op_type if unit == 'weight' else 'node'}); kept in {kept_in} so the gate holds"}
                for i, s in enumerate(result.excluded)]
    record = {"passed": result.passed, "rounds": result.rounds,
              "ranking": [{"node": s.node, "op_type": s.op_type, "snr_db_lost": -s.snr_db} for s in ranked[:50]]}
    return result.model_path, returned, record
