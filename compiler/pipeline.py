"""Orchestration: spec → frontend → passes → backend → verify → artifact directory.

The only module (with the CLI) that imports every layer. Everything that can reject the input
runs before anything is written; the output path is then held (`artifacts.OutputSlot`: only
our artifacts are replaced, one writer at a time, atomic swap, a failed result never replaces a
passed one) and the artifact is assembled beside it, with its own copy of the golden set, and
swapped in when complete. A runtime's refusal of the model is exit 2 naming backend, op and node
(`toolchain_step`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from calibration import precision as precision_mod
from calibration import trt_cache
from calibration.fallback import Gate

from compiler import frontend, interrupts, golden as golden_mod, ir as irh, report as report_mod, spec as spec_mod, validation
from compiler.artifacts import DUMP_MARKER, IR_DUMP, MANIFEST, VOLATILE, OutputSlot, check_integrity, file_table, json_safe, seal, sha256_file, write_json
from compiler.errors import (BadInput, CompilerError, ParityFailure, ToolchainMissing, ToolchainRefused, is_toolchain_exception,
                             mentioned_ops, resource_error)
from compiler.passes import PassContext, get_pipeline
from compiler.passes.manager import DumpIR, GoldenCheck
from compiler.passes.manager import run as run_passes
from compiler.profile import TargetProfile, load_profile
from compiler.progress import Progress
from compiler.spec import ModelSpec, OutputKind
from compiler.stages import StageCache, stage_key
from compiler.tolerances import check_precision
from compiler.verify import ParityReport, compare, metric_result, top1_accuracy
from targets import get_backend
from targets.base import Backend, Engine, Runner
from targets.ort import OrtRunner

MODEL_FILE = "model.onnx"
ARTIFACT_GOLDEN = "golden"  # the golden set travels inside the artifact
SCHEMA = 3  # 3: manifest_sha256 seals the manifest's own content
EVAL_BATCH = 64


@dataclass
class BuildResult:
    out_dir: Path
    passed: bool
    parity: ParityReport | None
    manifest: dict[str, Any]
    failure: str | None = None  # why the build failed, where the parity report alone does not say


def toolchain_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("model-compiler", "torch", "onnx", "onnxruntime", "onnx-ir", "onnxscript", "numpy", "transformers"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


@dataclass(frozen=True)
class BuildOptions:
    """Options of one build beyond model and target (CLI flags)."""

    precision: str | None = None
    out: Path | None = None
    golden_dir: Path | None = None
    pipeline: str | None = None  # overrides the profile's
    exporter: str | None = None  # overrides the spec's: "dynamo" | "legacy"
    verify_passes: bool = False
    dump_ir: Path | None = None
    calibrator: str | None = None  # overrides the target preset's
    calib_samples: int | None = None  # overrides the spec's
    trust_pickle: bool = False  # a .pt2 may unpickle when loaded (runs code from the file)
    calib: str | None = None  # --calib: an .npz or package.module:factory (replaces the spec's)
    stages: StageCache | None = None  # shared export + passes (set by `best`, not a CLI flag)
    candidate: bool = False  # a `best` candidate built into scratch: its install is not the run's commit point


def build(model_arg: str, target: str, opts: BuildOptions = BuildOptions(), progress: Progress | None = None) -> BuildResult:
    progress = progress or Progress()
    t0 = time.perf_counter()
    precision, golden_dir = opts.precision, opts.golden_dir
    # --- everything that can reject the input, before anything is written -----------------
    profile = load_profile(target)
    pipeline_name = opts.pipeline or profile.pipeline
    get_pipeline(pipeline_name)
    if precision is not None:
        check_precision(precision)
    precision = profile.check_precision(precision)
    spec = dataclasses.replace(spec_mod.resolve(model_arg), trust_pickle=opts.trust_pickle)
    if opts.calib is not None:
        spec = dataclasses.replace(spec, calibration=spec_mod.calib_from_cli(opts.calib, spec.batch_axes))
    if opts.calib_samples is not None:
        if opts.calib_samples < 1:
            raise BadInput(f"--calib-samples must be ≥ 1, got {opts.calib_samples}.")
        if spec.calibration is not None:
            spec = dataclasses.replace(spec, calibration=dataclasses.replace(spec.calibration, samples=opts.calib_samples))
    weights_only = precision == "int8" and profile.quantization is not None and profile.quantization.weights_only
    if precision == "int8" and spec.calibration is None and not weights_only:
        toml = repr(str(spec.path)) if spec.path and spec.path.suffix == ".toml" else None
        raise BadInput(
            f"int8 for {spec.name!r} needs calibration data and " + (f"{toml} names none" if toml else "none was given")
            + ": pass --calib DATA (an .npz keyed by input name, or package.module:factory returning {input: array}) "
            f"or add a [calibration] table to {toml or 'a spec TOML'}; or choose another --precision "
            f"(target {profile.name!r} allows {', '.join(profile.precisions)})."
        )
    if opts.exporter is not None:
        spec = dataclasses.replace(spec, export=dataclasses.replace(spec.export, exporter=spec_mod.Exporter(opts.exporter)))
    backend = get_backend(profile.backend)
    avail = backend.available(profile)
    if not avail.can_compile:
        raise ToolchainMissing(f"target {target!r} ({profile.backend}) cannot compile on this host: {avail.reason}.")
    if golden_dir is not None and not golden_dir.is_dir():
        what = "is a file, not a directory" if golden_dir.exists() else "does not exist"
        raise BadInput(f"--golden {str(golden_dir)!r} {what}: give a directory with inputs.npz and outputs.npz "
                       "keyed by the graph's input/output names.")
    out = opts.out or Path("build") / profile.name / spec.name
    dump_ir = opts.dump_ir
    if dump_ir is not None and dump_ir.exists() and not dump_ir.is_dir():
        raise BadInput(f"--dump-ir {str(dump_ir)!r} is a file; give a directory for the per-pass models.")
    golden_dir = golden_dir or golden_mod.GOLDEN_ROOT / spec.name
    _check_disjoint({"--out": out, "--golden": golden_dir, **({"--dump-ir": dump_ir} if dump_ir is not None else {})})
    slot = OutputSlot(out, log=progress.info)
    slot.check()
    dump_slot = OutputSlot(dump_ir, IR_DUMP, log=progress.info) if dump_ir is not None else None
    if dump_slot is not None:
        dump_slot.check()
    if not golden_dir.is_dir():
        golden_dir = _make_golden(spec, model_arg, golden_dir, progress)
    golden = golden_mod.Golden.load(golden_dir)
    volatile: dict[str, Any] = {"golden_source": str(golden_dir)}

    with slot, dump_slot or contextlib.nullcontext():
        # export + passes do not depend on the precision: `best` shares them between candidates
        # (not with --verify-passes / --dump-ir, whose point is to watch those stages run)
        key = None
        if opts.stages is not None and not opts.verify_passes and opts.dump_ir is None:
            key = stage_key(spec, golden.inputs, pipeline_name, type(backend).accepts)
        hit = opts.stages.get(key) if key is not None else None
        if hit is not None:
            fe, optimized = hit
            progress.info(f"frontend + passes: reused ({fe.exporter}, {irh.node_count(optimized.model)} nodes after {pipeline_name!r})")
        else:
            with progress.step(f"frontend: {spec.source}"):
                fe = frontend.load(spec, golden.inputs, log=progress.info)
                progress.info(f"{fe.exporter} → {irh.node_count(fe.model)} nodes, opset {irh.opset(fe.model)}")
        golden.check_against(fe.model)
        exported_nodes = irh.node_count(fe.model)
        exported_ops = irh.op_histogram(fe.model)
        if hit is None:
            instruments: list = []
            dump_staging = None
            if dump_slot is not None:
                dump_staging = dump_slot.staging()
                instruments.append(DumpIR(dump_staging))
            if opts.verify_passes:
                instruments.append(_golden_check(golden, spec))
            with progress.step(f"passes: pipeline {pipeline_name!r}"):
                try:
                    optimized = run_passes(fe.model, pipeline_name, PassContext(type(backend).accepts), instruments,
                                           log=progress.info)
                except ParityFailure:  # --verify-passes named the pass: the dump is what to look at
                    if dump_staging is not None:
                        _install_dump(dump_slot, dump_staging, spec, pipeline_name, progress)
                    raise
            if key is not None:
                opts.stages.put(key, fe, optimized)
        model = optimized.model
        golden.check_against(model)  # a pass must not rename or reshape the graph's interface
        optimized_nodes, optimized_ops = irh.node_count(model), irh.op_histogram(model)
        precision_result, gate_failures = None, []
        # a reduced precision is judged on the validation set too: by the int8/fp16 fallback
        # gate, and, for every one (bf16 included), in the built engine at the end
        groups = []
        if spec.validation is not None and (precision in ("int8", "fp16") or (precision != "fp32" and avail.can_run)):
            groups = _validation_groups(model, spec, slot.work, progress, opts.stages, key)
        if precision in ("int8", "fp16"):
            with progress.step(f"precision: {precision}"):
                work = slot.work / "precision"
                work.mkdir()
                engine_gate = backend if profile.option("precision_gate", "onnxruntime") == "engine" and avail.can_run else None
                precision_result = _reduce_precision(model, spec, profile, precision, golden, work, progress, opts.calibrator,
                                                     groups, engine_gate)
                model = ir.load(precision_result.model_path)
                ir.external_data.load_to_model(model)
                gate_failures = _fallback_failures(precision_result.stats, precision)
                for f in gate_failures:
                    progress.info(f"FAILED: {f}")

        tmp = slot.staging()
        model_files = irh.save(model, tmp / MODEL_FILE)
        golden.copy_to(tmp / ARTIFACT_GOLDEN)
        if precision_result is not None:
            volatile["calibration_seconds"] = {k: precision_result.stats.pop(k) for k in list(precision_result.stats)
                                               if k.endswith("seconds")}
            write_json(tmp / "calibration.json", precision_result.stats)
            if precision_result.ranges is not None and precision == "int8" and not weights_only:
                trt_cache.write(precision_result.ranges, tmp / "calibration.cache")
        with progress.step(f"compile: {profile.backend} ({precision})"), toolchain_step(backend.name, "compile", model):
            engine = backend.compile(model, tmp / MODEL_FILE, profile, precision, tmp)
        parity, verified_with = None, None
        runner = None
        threads = int(profile.option("intra_op_num_threads", 1))
        with toolchain_step(backend.name, "load the engine of", model):
            if avail.can_run:
                runner, verified_with = backend.load(engine, threads=threads), "engine"
            elif (runner := backend.host_check(engine)) is not None:
                verified_with = f"host-side check: {engine.info.get('host_check', 'see backend')}; engine verification deferred"
        if runner is not None:
            label = "engine" if verified_with == "engine" else "host-side check, engine deferred"
            with progress.step(f"verify against golden ({label})"), runner, toolchain_step(backend.name, "run", model):
                parity = check_parity(runner, golden, spec, precision)
                if groups and verified_with == "engine":
                    parity.validation = validation.check(runner, groups, precision, _tolerance(golden, spec, precision))
            if verified_with == "engine":
                with toolchain_step(backend.name, "run", model):
                    parity.variants = variant_parity(backend, engine, golden, spec, precision, threads, step=progress.step)
            parity.precision_gate = gate_failures
            progress.info("PASSED" if parity.passed else "FAILED: " + "; ".join(parity.failures()))
        status = "unverified" if parity is None else ("passed" if parity.passed else "failed")
        if gate_failures:  # not a working build of its precision, whether or not the engine ran here
            status = "failed"
        manifest = _manifest(spec, profile, precision, fe, engine, golden, status, avail, [f.name for f in model_files], model)
        manifest["node_count"] = {"exported": exported_nodes, "optimized": optimized_nodes, "final": irh.node_count(model)}
        manifest["ops"] = {"exported": exported_ops, "optimized": optimized_ops, "final": irh.op_histogram(model)}
        manifest["pipeline"] = {"name": pipeline_name, "verified_each_pass": opts.verify_passes,
                                "fusions": optimized.fusions, "skipped": optimized.skipped}
        volatile["frontend_seconds"] = round(fe.seconds, 3)
        if hit is not None:
            volatile["frontend_and_passes"] = "reused from an earlier --precision best candidate (seconds are that run's)"
        volatile["pass_seconds"] = [{"name": r["name"], "phase": r["phase"], "seconds": r.pop("seconds")} for r in optimized.records]
        manifest["passes"] = optimized.records
        manifest["verified_with"] = verified_with
        if precision_result is not None:
            st = precision_result.stats
            manifest["calibration"] = {
                "calibrator": st.get("calibrator"), "samples": st.get("samples"), "preset": st.get("preset"),
                "float_nodes": [n["node"] for n in precision_result.float_nodes],
            }
            if gate_failures:
                manifest["calibration"]["gate_failures"] = gate_failures
        volatile["build_seconds"] = round(time.perf_counter() - t0, 3)
        finalize(tmp, manifest, parity, volatile)
        installed = slot.install(tmp, failed=status == "failed", commit=not opts.candidate)
        if dump_slot is not None and hit is None:
            _install_dump(dump_slot, dump_staging, spec, pipeline_name, progress)
    if opts.candidate:
        progress.info(f"candidate {precision}: {status}")
    else:
        progress.info(f"artifact: {installed}/ ({status})")
    return BuildResult(installed, status != "failed", parity, manifest)


def _check_disjoint(paths: dict[str, Path]) -> None:
    """No output may lie inside another given directory (or be it): `--out` inside the golden
    set would write into it, a dump inside `--out` would vanish with the swap."""
    resolved = {flag: p.resolve() for flag, p in paths.items()}
    for a, pa in resolved.items():
        for b, pb in resolved.items():
            if a != b and a != "--golden" and (pa == pb or pa.is_relative_to(pb)):
                rel = "is" if pa == pb else "lies inside"
                raise BadInput(f"refusing to write {a} {str(paths[a])!r}: it {rel} {b} {str(paths[b])!r}; "
                               f"choose a {a} outside it.")


def _install_dump(dump_slot: OutputSlot, staging: Path, spec: ModelSpec, pipeline: str, progress: Progress) -> None:
    write_json(staging / DUMP_MARKER, {"written_by": "model-compiler", "kind": IR_DUMP, "model": spec.name,
                                       "pipeline": pipeline})
    dump_slot.install(staging)
    progress.info(f"per-pass models: {dump_slot.final}/")


def _make_golden(spec: ModelSpec, model_arg: str, golden_dir: Path, progress: Progress) -> Path:
    """No golden set yet: compute it from PyTorch eager (the spec's [golden] inputs or the
    factory's example inputs), as `make build` does, so one command builds a factory model."""
    if spec.source_kind is spec_mod.SourceKind.ONNX:
        raise BadInput(f"{spec.source!r} is an ONNX file and {str(golden_dir)!r} does not exist: pass --golden DIR "
                       "with inputs.npz and outputs.npz keyed by its graph input/output names.")
    progress.info(f"no golden set at {golden_dir}: computing it from PyTorch eager fp32 "
                  f"(as `python -m compiler golden --model {model_arg}`)")
    with progress.step(f"golden: {spec.name}"):
        return golden_mod.generate(spec, golden_dir, log=progress.info, commit=False)


@contextlib.contextmanager
def toolchain_step(backend: str, action: str, model: ir.Model) -> Iterator[None]:
    """Turn a runtime's own refusal (an exception from its library, or a native RuntimeError)
    into exit 2 naming the backend and the nodes/ops its message mentions."""
    try:
        yield
    except Exception as e:
        interrupts.check()
        if isinstance(e, CompilerError) or not is_toolchain_exception(e):
            raise
        full = resource_error(e, tempfile.gettempdir())  # the build's scratch, beside its output
        if full is not None:
            raise full from None
        text = " ".join(str(e).split())
        ops = mentioned_ops(text, (n.op_type for n in model.graph))
        nodes = sorted({n.name for n in model.graph if n.name and len(n.name) > 2 and n.name in text})[:5]
        named = "; ".join(x for x in (f"op {', '.join(ops)}" if ops else "", f"node {', '.join(nodes)}" if nodes else "") if x)
        first = re.sub(r"\x1b\[[0-9;]*m", "", text)
        first = first[:500] + ("…" if len(first) > 500 else "")
        raise ToolchainRefused(f"{backend} cannot {action} this model" + (f" ({named})" if named else "")
                               + f": {type(e).__name__}: {first}") from None


def volatile_facts(extra: dict[str, Any]) -> dict[str, Any]:
    """build.json: the facts that differ between two builds of the same inputs."""
    return {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(), "cwd": os.getcwd(), **extra}


def finalize(directory: Path, manifest: dict[str, Any], parity: ParityReport | None,
             volatile: dict[str, Any] | None = None) -> None:
    """Write parity.json, report.md, manifest.json (which hashes every other content file) and
    build.json (the volatile facts, outside the hash)."""
    if parity is not None:
        write_json(directory / "parity.json", parity.as_dict())
    manifest["files"] = file_table(directory, exclude=(MANIFEST, VOLATILE, "report.md"))
    (directory / "report.md").write_text(report_mod.render(manifest, parity))
    manifest["files"] = file_table(directory)
    manifest.update(json_safe(manifest))  # strict JSON: a NaN statistic (a candidate's) becomes null
    seal(manifest)
    write_json(directory / MANIFEST, manifest)
    if volatile is not None:
        write_json(directory / VOLATILE, volatile_facts(volatile))


def build_best(model_arg: str, target: str, opts: BuildOptions = BuildOptions(), progress: Progress | None = None) -> BuildResult:
    """`--precision best`: build every precision the target allows, keep those whose engine passes
    the golden gate, measure them in one interleaved benchmark (batch 1, or the engine's static
    shapes, this host) and install the fastest as the artifact, with every candidate recorded in
    its manifest. If none passes, the candidate at the target's default precision is installed,
    marked failed (exit 1), as any failed build is."""
    from compiler.bench import bench_many

    progress = progress or Progress()
    profile = load_profile(target)
    spec = spec_mod.resolve(model_arg)
    out = opts.out or Path("build") / profile.name / spec.name
    _check_disjoint({"--out": out, "--golden": opts.golden_dir or golden_mod.GOLDEN_ROOT / spec.name})
    candidates: list[dict[str, Any]] = []
    with OutputSlot(out, log=progress.info) as slot:
        built: dict[str, BuildResult] = {}
        refused: list[BadInput] = []
        stages = StageCache()
        for precision in profile.precisions:
            with progress.step(f"best: candidate {precision}"):
                try:
                    r = build(model_arg, target, dataclasses.replace(opts, precision=precision, out=slot.work / precision,
                                                                     stages=stages, candidate=True), progress)
                except BadInput as e:  # e.g. int8 without calibration data: that candidate only
                    refused.append(e)
                    candidates.append({"precision": precision, "passed": False, "failures": [f"not built: {e}"]})
                    progress.info(f"best: {precision} not built: {e}")
                    continue
            built[precision] = r
            candidates.append({"precision": precision, "passed": r.passed,
                               "failures": r.parity.failures() if r.parity is not None else [], **_candidate_facts(r)})
        if not built:
            raise refused[0]
        passing = [p for p in built if built[p].passed and built[p].parity is not None]
        if not passing:
            shown = profile.default_precision if profile.default_precision in built else next(iter(built))
            failure = (f"no precision of target {target!r} passes the golden gate for {spec.name!r}: "
                       + "; ".join(f"{c['precision']}: {', '.join(c['failures'])}" for c in candidates))
            best = {"chosen": None, "installed": shown, "criterion": "none passed; the target's default precision is "
                    "installed, marked failed", "candidates": candidates}
            return _install_best(slot, built[shown], best, progress, failure)
        manifest0 = built[passing[0]].manifest
        batch, shapes = bench_batch(manifest0)
        with progress.step(f"best: benchmark the passing candidates ({shapes}, interleaved)"):
            timings = bench_many([built[p].out_dir for p in passing], [batch], iters=20, warmup=3)
        for c in candidates:
            t = next((t for t in timings if t["precision"] == c["precision"]), None)
            c["p50_ms"] = None if t is None else round(t["latency_ms"]["p50"], 4)
        chosen = min(passing, key=lambda p: next(c["p50_ms"] for c in candidates if c["precision"] == p))
        progress.info(f"best: {chosen} (" + ", ".join(f"{c['precision']} {c['p50_ms']} ms" if c["passed"]
                                                       else f"{c['precision']} failed" for c in candidates) + ")")
        # The choice rests on latencies measured in this run, so a `best` artifact is not
        # reproducible byte for byte the way a single-precision build is.
        best = {"chosen": chosen, "criterion": f"lowest p50 latency ({shapes}) among passing precisions",
                "bench_shapes": shapes, "candidates": candidates,
                "shared_stages": f"export and passes ran once; {stages.hits} other candidate(s) reused them"}
        return _install_best(slot, built[chosen], best, progress)


def _install_best(slot: OutputSlot, result: BuildResult, best: dict[str, Any], progress: Progress,
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


def _candidate_facts(r: BuildResult) -> dict[str, Any]:
    """What `best` reports per candidate: validation accuracy in the engine, the precision map
    (graph and, where the runtime reports it, the engine's own), float nodes and why, build time."""
    m = r.manifest
    facts: dict[str, Any] = {}
    if r.parity is not None and r.parity.validation:
        facts["validation_cosine"] = {g: round(min(o.cosine for o in rep.outputs.values()), 5)
                                      for g, rep in r.parity.validation.items()}
    graph = "fp32 graph"
    stats_path = r.out_dir / "calibration.json"
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    floats = stats.get("fallback", {}).get("float_nodes") if stats.get("precision") == "int8" else stats.get("float_nodes")
    if stats.get("precision") == "int8":
        graph = f"{stats['quantized_nodes']} node(s) int8, {len(floats or [])} returned to float"
    elif stats.get("precision") == "fp16":
        graph = f"fp16 graph, {len(floats or [])} node(s) kept fp32"
    info = m.get("engine", {}).get("info", {})
    if info.get("runtime_precisions"):
        graph += "; engine runs " + ", ".join(f"{k} ×{v}" for k, v in sorted(info["runtime_precisions"].items()))
    elif info.get("inference_precision_hint"):
        graph += f"; engine hint {info['inference_precision_hint']}"
    facts["precision_map"] = graph
    facts["float_nodes"] = [{"node": n["node"], "why": n["why"]} for n in floats or []]
    build_json = r.out_dir / VOLATILE
    if build_json.is_file():
        facts["build_seconds"] = json.loads(build_json.read_text()).get("build_seconds")
    return facts


def build_from_artifact(artifact: Path, target: str, progress: Progress | None = None) -> BuildResult:
    """Finish a build whose engine step was deferred (TensorRT, on the device): compile the
    artifact's model.onnx with the same profile, verify the engine against the artifact's own
    golden set, and replace the artifact atomically with the engine added and the deferred
    steps cleared."""
    progress = progress or Progress()
    t0 = time.perf_counter()
    manifest = read_manifest(artifact)
    profile = load_profile(target)
    if manifest["target"]["name"] != profile.name:
        raise BadInput(f"{artifact} was prepared for target {manifest['target']['name']!r}, not {profile.name!r}.")
    if not manifest.get("deferred"):
        raise BadInput(f"{str(artifact)!r}: nothing is deferred (its engine was built and verified with "
                       f"{manifest.get('verified_with') or 'the build'}); --from-artifact finishes a deferred "
                       "engine step. Use `verify --artifact` to check it again.")
    backend = get_backend(profile.backend)
    avail = backend.available(profile)
    if not avail.can_run:
        raise ToolchainMissing(f"target {target!r} cannot build or run its engine on this host: {avail.reason}.")
    golden = artifact_golden(artifact, manifest)
    with OutputSlot(artifact, log=progress.info) as slot:
        tmp = slot.staging()
        for f in manifest["files"]:
            (tmp / f["path"]).parent.mkdir(parents=True, exist_ok=True)
            (tmp / f["path"]).write_bytes((artifact / f["path"]).read_bytes())
        model = ir.load(tmp / MODEL_FILE)
        with progress.step(f"compile: {profile.backend} ({manifest['precision']})"):
            engine = backend.compile(model, tmp / MODEL_FILE, profile, manifest["precision"], tmp)
        with progress.step("verify against golden (engine)"), backend.load(engine) as runner:
            parity = check_parity(runner, golden, None, manifest["precision"], kinds=manifest["model"].get("outputs"))
        manifest.update(status="passed" if parity.passed else "failed", engine=engine.to_manifest(), deferred=[],
                        verified_with="engine", toolchain={**manifest["toolchain"], **avail.versions})
        finalize(tmp, manifest, parity, {"engine_build_seconds": round(time.perf_counter() - t0, 3)})
        installed = slot.install(tmp, failed=not parity.passed)
    return BuildResult(installed, parity.passed, parity, manifest)


def check_parity(runner: Runner, golden: golden_mod.Golden, spec: ModelSpec | None, precision: str,
                 kinds: dict[str, str] | None = None) -> ParityReport:
    """Run the golden inputs (and the labelled evaluation set, if any) through `runner`."""
    actual = runner.run(golden.inputs)
    outputs = {}
    for name, ref in golden.outputs.items():
        kind = spec.output_kind(name) if spec is not None else OutputKind((kinds or {}).get(name, "tensor"))
        outputs[name] = compare(name, ref, actual.get(name), golden.tolerances.for_output(precision, name, kind))
    metric = None
    ref = golden.metric_reference
    if spec is not None and spec.evaluation is not None and ref is not None:
        data = spec.evaluation.data
        logits, labels = [], []
        for batch in data.batches(EVAL_BATCH):
            logits.append(runner.run(batch.feeds)[spec.evaluation.output])
            labels.append(batch.labels)
        acc = top1_accuracy(np.concatenate(logits), np.concatenate(labels))
        metric = metric_result(ref["name"], float(ref["reference"]), acc, int(sum(len(x) for x in labels)),
                               golden.tolerances.for_metric(precision))
    return ParityReport(precision, outputs, metric)


def variant_parity(backend: Backend, engine: Engine, golden: golden_mod.Golden, spec: ModelSpec | None, precision: str,
                   threads: int = 1, kinds: dict[str, str] | None = None,
                   step: Callable[[str], contextlib.AbstractContextManager] = lambda _: contextlib.nullcontext()
                   ) -> dict[str, ParityReport]:
    """Parity of every other way this host runs the same engine (`Backend.variants`)."""
    reports = {}
    for label, runner in backend.variants(engine, threads).items():
        with step(f"verify against golden ({label})"), runner:
            reports[label] = check_parity(runner, golden, spec, precision, kinds)
    return reports


def _fallback_failures(stats: dict[str, Any], precision: str) -> list[str]:
    """The fallback search's failure, as a build failure: the model left is (nearly) all float
    and still misses the gate, so labelling it `precision` would be a lie."""
    fb = stats.get("fallback")
    if fb is None or fb["passed"]:
        return []
    last = fb["rounds"][-1] if fb["rounds"] else {}
    return [f"{precision} misses the gate even with all {last.get('float_nodes', '?')} candidate node(s) back in float "
            f"({last.get('summary', 'no round ran')}); this is not a working {precision} build — choose another "
            "--precision, or another calibrator / calibration set"]


def _tolerance(golden: golden_mod.Golden, spec: ModelSpec, precision: str) -> Callable[[str], Any]:
    return lambda name: golden.tolerances.for_output(precision, name, spec.output_kind(name))


def _validation_groups(model: ir.Model, spec: ModelSpec, work: Path, progress: Progress, stages: StageCache | None,
                       key: str | None) -> list[validation.Group]:
    """The validation set with the optimized float model's outputs on it (ORT), once per build —
    once per `best` run, through the stage cache, since every candidate starts from that model."""

    def compute() -> list[validation.Group]:
        path = work / "validation_float" / "float.onnx"  # in the build's scratch, removed with it
        path.parent.mkdir()
        irh.save(model, path)
        return validation.load(spec, lambda: OrtRunner(path, "CPUExecutionProvider", threads=1), progress.info)

    if stages is None or key is None:
        return compute()
    return stages.derived(key, "validation", compute)


def _reduce_precision(model, spec: ModelSpec, profile: TargetProfile, precision: str, golden: golden_mod.Golden,
                      work: Path, progress: Progress, calibrator: str | None, groups: list[validation.Group],
                      engine_gate: Backend | None = None):
    """Calibrate and convert the optimized float model; int8 and fp16 fall back per node until
    the golden gate (and the task metric, if the spec has a labelled set) holds — in ONNX Runtime,
    or, where the profile says `precision_gate = "engine"` (integer kernels that ORT's QDQ
    simulation does not reproduce, e.g. LiteRT's), in the target's own engine compiled from
    each candidate."""
    float_path = work / "float.onnx"
    irh.save(model, float_path)
    tolerance = _tolerance(golden, spec, precision)

    def reports(path: Path) -> tuple[list[ParityReport], dict[str, ParityReport]]:
        """The candidate's parity on golden — in ORT, or in the engine and each of its variants
        (LiteRT's XNNPACK and reference int8 kernels round differently; both must pass) — and on
        the validation groups (in ORT, or in the engine)."""
        if engine_gate is None:
            with OrtRunner(path, "CPUExecutionProvider", threads=1) as runner:
                return [check_parity(runner, golden, spec, precision)], validation.check(runner, groups, precision, tolerance)
        out = path.with_suffix(".engine")
        out.mkdir()
        candidate = ir.load(path)
        with toolchain_step(engine_gate.name, "compile", candidate):
            engine = engine_gate.compile(candidate, path, profile, precision, out)
        with toolchain_step(engine_gate.name, "run", candidate), engine_gate.load(engine, threads=1) as runner:
            main = check_parity(runner, golden, spec, precision)
            valid = validation.check(runner, groups, precision, tolerance)
        return [main, *variant_parity(engine_gate, engine, golden, spec, precision).values()], valid

    def gate(path: Path) -> Gate:
        reps, valid = reports(path)
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

    if precision == "fp16" or (precision == "int8" and profile.quantization is not None and profile.quantization.weights_only):
        # weight-only int8 (Core ML): the graph runs in fp16 and the backend compresses its weights;
        # the fp16 stage decides what stays fp32, the final parity judges the compressed engine
        result = precision_mod.fp16(float_path, spec, profile, work, log=progress.info, gate=gate, golden_feeds=golden.inputs)
    else:
        result = precision_mod.int8(float_path, spec, profile, gate, work, method=calibrator, log=progress.info)
    if groups:  # → calibration.json: what the decisions were judged on besides golden
        result.stats["validation"] = {g.label: g.samples for g in groups}
    return result


def _golden_check(golden: golden_mod.Golden, spec: ModelSpec) -> GoldenCheck:
    """Per-pass verification at the fp32 tolerances: passes run before any precision change."""

    def failures(name: str, ref: np.ndarray, got: np.ndarray) -> list[str]:
        tol = golden.tolerances.for_output("fp32", name, spec.output_kind(name))
        return compare(name, ref, got, tol).failures

    return GoldenCheck(golden.inputs, golden.outputs, failures)


def _manifest(spec: ModelSpec, profile: TargetProfile, precision: str, fe: frontend.FrontendResult, engine: Engine,
              golden: golden_mod.Golden, status: str, avail, model_files: list[str], model: ir.Model) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "status": status,
        "model": {
            "name": spec.name,
            "source": spec.source,
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
        "precision": precision,
        "toolchain": {**toolchain_versions(), **avail.versions},
        "frontend": {
            "exporter": fe.exporter,
            "fallback_reason": fe.fallback_reason,
            "opset": irh.opset(fe.model),
        },
        "interface": {"inputs": [t.as_dict() for t in irh.graph_inputs(model)],
                      "outputs": [t.as_dict() for t in irh.graph_outputs(model)]},
        "model_files": model_files,
        "engine": engine.to_manifest(),
        "deferred": [dict(d.__dict__) for d in engine.deferred],
        "golden": {
            "dir": ARTIFACT_GOLDEN,  # a copy inside the artifact: it verifies wherever it is copied
            "inputs_sha256": sha256_file(golden.dir / "inputs.npz"),
            "outputs_sha256": sha256_file(golden.dir / "outputs.npz"),
            "samples": golden.samples,
            "reference": golden.meta.get("reference", "given"),
        },
    }


# Keys a manifest must have for verify/bench/--from-artifact to use it: (dotted key, type).
_REQUIRED = (("schema", int), ("status", str), ("precision", str), ("model", dict), ("model.name", str),
             ("target", dict), ("target.name", str), ("engine", dict), ("engine.backend", str), ("engine.entry", str),
             ("engine.files", list), ("files", list), ("golden", dict))


def read_manifest(artifact: Path) -> dict[str, Any]:
    path = artifact / MANIFEST
    if not path.is_file():
        raise BadInput(f"{str(artifact)!r} is not an artifact directory (no {MANIFEST}).")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{str(path)!r} is not valid JSON: {e}.") from None
    if not isinstance(manifest, dict):
        raise BadInput(f"{str(path)!r} is not a manifest: a JSON object was expected, found {type(manifest).__name__}.")
    for key, typ in _REQUIRED:
        value: Any = manifest
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, typ):
            raise BadInput(f"{str(path)!r} lacks {key!r} ({typ.__name__}); was it written by model-compiler?")
    for i, f in enumerate(manifest["files"]):
        if not (isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sha256"), str)):
            raise BadInput(f"{str(path)!r}: files[{i}] must be {{\"path\", \"sha256\"}}.")
        inside(artifact, f["path"], f"files[{i}].path", path)
    _check_interface(manifest, path)
    check_integrity(artifact, manifest, path)
    return manifest


def _check_interface(manifest: dict[str, Any], path: Path) -> None:
    """`interface` (the graph's inputs and outputs) as `TensorInfo.from_dict` reads it."""
    iface = manifest.get("interface")
    if iface is None:
        return
    if not isinstance(iface, dict):
        raise BadInput(f"{str(path)!r}: 'interface' must be an object with 'inputs' and 'outputs'.")
    for side in ("inputs", "outputs"):
        rows = iface.get(side)
        if not isinstance(rows, list):
            raise BadInput(f"{str(path)!r}: 'interface.{side}' must be a list.")
        for i, t in enumerate(rows):
            key = f"interface.{side}[{i}]"
            if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                raise BadInput(f"{str(path)!r}: {key!r} must be an object with a string 'name'.")
            try:
                if not isinstance(t.get("dtype"), str):
                    raise TypeError
                np.dtype(t["dtype"])
            except TypeError:
                raise BadInput(f"{str(path)!r}: {key}.dtype = {t.get('dtype')!r} is not a dtype name.") from None
            shape = t.get("shape", "missing")
            if shape is not None and not (isinstance(shape, list) and all(
                    d is None or isinstance(d, str) or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in shape)):
                raise BadInput(f"{str(path)!r}: {key}.shape = {shape!r} must be null or a list of dims (int ≥ 0, name or null).")


def inside(artifact: Path, rel: str, key: str, manifest_path: Path) -> Path:
    """`artifact/rel`, refusing a path that leaves the artifact (absolute, '..', a symlink out)."""
    p = Path(rel)
    target = (artifact / p).resolve()
    if p.is_absolute() or ".." in p.parts or not target.is_relative_to(artifact.resolve()):
        raise BadInput(f"{str(manifest_path)!r}: {key} = {rel!r} points outside the artifact; refusing to load it.")
    return artifact / p


def artifact_golden(artifact: Path, manifest: dict[str, Any], golden_dir: Path | None = None) -> golden_mod.Golden:
    """The artifact's own golden copy (or `golden_dir`), checked against the graph interface."""
    if golden_dir is None:
        golden_dir = inside(artifact, str(manifest["golden"].get("dir", ARTIFACT_GOLDEN)), "golden.dir", artifact / MANIFEST)
        if not golden_dir.is_dir():
            raise BadInput(f"{str(artifact)!r} carries no golden set ({ARTIFACT_GOLDEN}/; built by an older "
                           "model-compiler?): pass --golden DIR or rebuild it.")
    golden = golden_mod.Golden.load(golden_dir)
    if "interface" in manifest:
        golden.check_interface([irh.TensorInfo.from_dict(t) for t in manifest["interface"]["inputs"]],
                               [irh.TensorInfo.from_dict(t) for t in manifest["interface"]["outputs"]])
    return golden


def load_artifact(artifact: Path, threads: int = 1, on_device: bool = False,
                  manifest: dict[str, Any] | None = None) -> tuple[dict[str, Any], Runner]:
    """The manifest (read here unless given) and a runner for the engine of a built artifact
    (files checked by sha256)."""
    manifest = manifest if manifest is not None else read_manifest(artifact)
    profile = load_profile(manifest["target"]["name"])
    backend = get_backend(manifest["engine"]["backend"])
    avail = backend.available(profile)
    if not avail.can_run:
        raise ToolchainMissing(f"the {backend.name} engine in {str(artifact)!r} cannot run on this host: {avail.reason}.")
    engine = Engine.from_manifest(artifact, manifest["engine"])
    for key, rel in (("engine.entry", engine.entry), ("engine.info.device_entry", engine.info.get("device_entry"))):
        if rel is not None:
            inside(artifact, str(rel), key, artifact / MANIFEST)
    return manifest, backend.load(engine.for_device() if on_device else engine, threads=threads)


def verify(artifact: Path, golden_dir: Path | None = None, on_device: bool = False) -> ParityReport:
    """Run the artifact's engine on its own golden set (or `golden_dir`); `on_device` loads the
    device build (e.g. the aarch64 library on the board) instead of this host's twin. Works from
    any directory and after the artifact is moved: it needs nothing outside it."""
    manifest = read_manifest(artifact)
    golden = artifact_golden(artifact, manifest, golden_dir)  # checked before the engine is loaded
    _, runner = load_artifact(artifact, on_device=on_device, manifest=manifest)
    spec = None
    ref = manifest["model"].get("spec")
    if ref:  # the labelled evaluation set is outside the artifact: used only when the same spec is here
        try:
            candidate = spec_mod.load_spec(spec_mod.MODELS_DIR.parent / ref)
            spec = candidate if candidate.sha256 == manifest["model"].get("spec_sha256") else None
        except BadInput:
            spec = None
    kinds = manifest["model"].get("outputs")
    with runner:
        report = check_parity(runner, golden, spec, manifest["precision"], kinds=kinds)
    report.variants = variant_parity(get_backend(manifest["engine"]["backend"]), Engine.from_manifest(artifact, manifest["engine"]),
                                     golden, spec, manifest["precision"], kinds=kinds)
    return report
