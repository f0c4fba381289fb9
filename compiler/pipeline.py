"""Orchestration: spec → frontend → passes → backend → verify → artifact directory.

The only module (with the CLI) that imports every layer. Everything that can reject the input
runs before anything is written; the artifact is assembled in a temp dir and renamed into
``build/<target>/<model>/`` when complete (marked failed if parity fails).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from calibration import precision as precision_mod
from calibration import trt_cache
from calibration.fallback import Gate

from compiler import frontend, golden as golden_mod, ir as irh, report as report_mod, spec as spec_mod
from compiler.artifacts import MANIFEST, AtomicDir, file_table, install, sha256_file, write_json
from compiler.errors import BadInput, ParityFailure, ToolchainMissing
from compiler.passes import PassContext, get_pipeline
from compiler.passes.manager import DumpIR, GoldenCheck
from compiler.passes.manager import run as run_passes
from compiler.profile import TargetProfile, load_profile
from compiler.progress import Progress
from compiler.spec import ModelSpec, OutputKind
from compiler.tolerances import check_precision
from compiler.verify import ParityReport, compare, metric_result, top1_accuracy
from targets import get_backend
from targets.base import Engine, Runner
from targets.ort import OrtRunner

MODEL_FILE = "model.onnx"
EVAL_BATCH = 64


@dataclass
class BuildResult:
    out_dir: Path
    passed: bool
    parity: ParityReport | None
    manifest: dict[str, Any]


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


def build(model_arg: str, target: str, opts: BuildOptions = BuildOptions(), progress: Progress | None = None) -> BuildResult:
    progress = progress or Progress()
    t0 = time.perf_counter()
    precision, out, golden_dir = opts.precision, opts.out, opts.golden_dir
    # --- everything that can reject the input, before anything is written -----------------
    profile = load_profile(target)
    pipeline_name = opts.pipeline or profile.pipeline
    get_pipeline(pipeline_name)
    if precision is not None:
        check_precision(precision)
    precision = profile.check_precision(precision)
    spec = spec_mod.resolve(model_arg)
    if opts.calib_samples is not None:
        if opts.calib_samples < 1:
            raise BadInput(f"--calib-samples must be ≥ 1, got {opts.calib_samples}.")
        if spec.calibration is not None:
            spec = dataclasses.replace(spec, calibration=dataclasses.replace(spec.calibration, samples=opts.calib_samples))
    if opts.exporter is not None:
        spec = dataclasses.replace(spec, export=dataclasses.replace(spec.export, exporter=spec_mod.Exporter(opts.exporter)))
    backend = get_backend(profile.backend)
    avail = backend.available(profile)
    if not avail.can_compile:
        raise ToolchainMissing(f"target {target!r} ({profile.backend}) cannot compile on this host: {avail.reason}.")
    golden_dir = golden_dir or golden_mod.GOLDEN_ROOT / spec.name
    if not golden_dir.is_dir() and spec.source_kind is not spec_mod.SourceKind.ONNX:
        raise BadInput(
            f"no golden vectors for {spec.name!r} at {str(golden_dir)!r}; create them with "
            f"`python -m compiler golden --model {model_arg}` (or `make golden MODEL={spec.name}`), "
            "or pass --golden DIR."
        )
    if not golden_dir.is_dir():
        raise BadInput(f"{spec.source!r} is an ONNX file: pass --golden DIR with inputs.npz and outputs.npz keyed by its graph input/output names.")
    golden = golden_mod.Golden.load(golden_dir)

    with progress.step(f"frontend: {spec.source}"):
        fe = frontend.load(spec, golden.inputs, log=progress.info)
        progress.info(f"{fe.exporter} → {irh.node_count(fe.model)} nodes, opset {irh.opset(fe.model)}")
    golden.check_against(fe.model)
    exported_nodes = irh.node_count(fe.model)
    exported_ops = irh.op_histogram(fe.model)
    instruments: list = []
    if opts.dump_ir is not None:
        instruments.append(DumpIR(opts.dump_ir))
    if opts.verify_passes:
        instruments.append(_golden_check(golden, spec))
    with progress.step(f"passes: pipeline {pipeline_name!r}"):
        optimized = run_passes(fe.model, pipeline_name, PassContext(type(backend).accepts), instruments, log=progress.info)
    model = optimized.model
    golden.check_against(model)  # a pass must not rename or reshape the graph's interface
    optimized_nodes, optimized_ops = irh.node_count(model), irh.op_histogram(model)
    precision_result = None
    if precision in ("int8", "fp16"):
        with progress.step(f"precision: {precision}"), tempfile.TemporaryDirectory(prefix="precision-") as work:
            precision_result = _reduce_precision(model, spec, profile, precision, golden, Path(work), progress, opts.calibrator)
            model = ir.load(precision_result.model_path)
            ir.external_data.load_to_model(model)

    out = out or Path("build") / profile.name / spec.name
    with (writer := AtomicDir(out)) as tmp:
        model_files = irh.save(model, tmp / MODEL_FILE)
        if precision_result is not None:
            write_json(tmp / "calibration.json", precision_result.stats)
            if precision_result.ranges is not None and precision == "int8":
                trt_cache.write(precision_result.ranges, tmp / "calibration.cache")
        with progress.step(f"compile: {profile.backend} ({precision})"):
            engine = backend.compile(model, tmp / MODEL_FILE, profile, precision, tmp)
        parity, verified_with = None, None
        runner = None
        if avail.can_run:
            runner, verified_with = backend.load(engine, threads=int(profile.option("intra_op_num_threads", 1))), "engine"
        elif (runner := backend.host_check(engine)) is not None:
            verified_with = f"host-side check: {engine.info.get('host_check', 'see backend')}; engine verification deferred"
        if runner is not None:
            label = "engine" if verified_with == "engine" else "host-side check, engine deferred"
            with progress.step(f"verify against golden ({label})"), runner:
                parity = check_parity(runner, golden, spec, precision)
            progress.info("PASSED" if parity.passed else "FAILED: " + "; ".join(parity.failures()))
        status = "unverified" if parity is None else ("passed" if parity.passed else "failed")
        manifest = _manifest(spec, profile, precision, fe, engine, golden, status, avail, [f.name for f in model_files])
        manifest["node_count"] = {"exported": exported_nodes, "optimized": optimized_nodes, "final": irh.node_count(model)}
        manifest["ops"] = {"exported": exported_ops, "optimized": optimized_ops, "final": irh.op_histogram(model)}
        manifest["pipeline"] = {"name": pipeline_name, "verified_each_pass": opts.verify_passes,
                                "fusions": optimized.fusions, "skipped": optimized.skipped}
        manifest["passes"] = optimized.records
        manifest["verified_with"] = verified_with
        for d in manifest["deferred"]:
            d["command"] = d["command"].replace("{artifact}", str(out))
        if precision_result is not None:
            st = precision_result.stats
            manifest["calibration"] = {
                "calibrator": st.get("calibrator"), "samples": st.get("samples"), "preset": st.get("preset"),
                "float_nodes": [n["node"] for n in precision_result.float_nodes], "seconds": st.get("total_seconds"),
            }
        manifest["build_seconds"] = round(time.perf_counter() - t0, 3)
        finalize(tmp, manifest, parity)
        writer.commit()
    progress.info(f"artifact: {out}/ ({status})")
    return BuildResult(out, parity is None or parity.passed, parity, manifest)


def finalize(directory: Path, manifest: dict[str, Any], parity: ParityReport | None) -> None:
    """Write parity.json, report.md and manifest.json (which hashes every other file)."""
    if parity is not None:
        write_json(directory / "parity.json", parity.as_dict())
    manifest["files"] = file_table(directory, exclude=(MANIFEST, "report.md"))
    (directory / "report.md").write_text(report_mod.render(manifest, parity))
    manifest["files"] = file_table(directory)
    write_json(directory / MANIFEST, manifest)


def build_best(model_arg: str, target: str, opts: BuildOptions = BuildOptions(), progress: Progress | None = None) -> BuildResult:
    """`--precision best`: build every precision the target allows, keep those whose engine passes
    the golden gate, measure them in one interleaved benchmark (batch 1, this host) and install
    the fastest as the artifact, with every candidate recorded in its manifest."""
    from compiler.bench import bench_many

    progress = progress or Progress()
    profile = load_profile(target)
    spec = spec_mod.resolve(model_arg)
    out = opts.out or Path("build") / profile.name / spec.name
    out.parent.mkdir(parents=True, exist_ok=True)
    candidates: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.best-", dir=out.parent) as tmp:
        built: dict[str, BuildResult] = {}
        for precision in profile.precisions:
            with progress.step(f"best: candidate {precision}"):
                r = build(model_arg, target, dataclasses.replace(opts, precision=precision, out=Path(tmp) / precision), progress)
            built[precision] = r
            candidates.append({"precision": precision, "passed": r.passed,
                               "failures": r.parity.failures() if r.parity is not None else []})
        passing = [p for p in built if built[p].passed and built[p].parity is not None]
        if not passing:
            raise ParityFailure(f"no precision of target {target!r} passes the golden gate for {spec.name!r}: "
                                + "; ".join(f"{c['precision']}: {', '.join(c['failures'])}" for c in candidates))
        with progress.step("best: benchmark the passing candidates (batch 1, interleaved)"):
            timings = bench_many([built[p].out_dir for p in passing], [1], iters=20, warmup=3)
        for c in candidates:
            t = next((t for t in timings if t["precision"] == c["precision"]), None)
            c["p50_ms_batch1"] = None if t is None else round(t["latency_ms"]["p50"], 4)
        chosen = min(passing, key=lambda p: next(c["p50_ms_batch1"] for c in candidates if c["precision"] == p))
        progress.info(f"best: {chosen} (" + ", ".join(f"{c['precision']} {c['p50_ms_batch1']} ms" if c["passed"]
                                                       else f"{c['precision']} failed" for c in candidates) + ")")
        result = built[chosen]
        manifest = read_manifest(result.out_dir)
        manifest["best"] = {"chosen": chosen, "criterion": "lowest p50 latency at batch 1 among passing precisions",
                            "candidates": candidates}
        finalize(result.out_dir, manifest, result.parity)
        install(result.out_dir, out)
    progress.info(f"artifact: {out}/ (best = {chosen})")
    return BuildResult(out, True, result.parity, manifest)


def build_from_artifact(artifact: Path, target: str, progress: Progress | None = None) -> BuildResult:
    """Finish a build whose engine step was deferred (TensorRT on the device): compile the
    artifact's model.onnx with the same profile, verify the engine against golden, and replace
    the artifact atomically with the engine added and the deferred steps cleared."""
    progress = progress or Progress()
    t0 = time.perf_counter()
    manifest = read_manifest(artifact)
    profile = load_profile(target)
    if manifest["target"]["name"] != profile.name:
        raise BadInput(f"{artifact} was prepared for target {manifest['target']['name']!r}, not {profile.name!r}.")
    backend = get_backend(profile.backend)
    avail = backend.available(profile)
    if not avail.can_run:
        raise ToolchainMissing(f"target {target!r} cannot build or run its engine on this host: {avail.reason}.")
    for f in manifest["files"]:
        if sha256_file(artifact / f["path"]) != f["sha256"]:
            raise BadInput(f"artifact file {str(artifact / f['path'])!r} differs from its sha256 in the manifest.")
    golden = golden_mod.Golden.load(Path(manifest["golden"]["dir"]))
    spec = spec_mod.load_spec(Path(manifest["model"]["spec"])) if manifest["model"].get("spec") else None
    with (writer := AtomicDir(artifact)) as tmp:
        for f in manifest["files"]:
            (tmp / f["path"]).write_bytes((artifact / f["path"]).read_bytes())
        model = ir.load(tmp / MODEL_FILE)
        with progress.step(f"compile: {profile.backend} ({manifest['precision']})"):
            engine = backend.compile(model, tmp / MODEL_FILE, profile, manifest["precision"], tmp)
        with progress.step("verify against golden (engine)"), backend.load(engine) as runner:
            parity = check_parity(runner, golden, spec, manifest["precision"], kinds=manifest["model"].get("outputs"))
        manifest.update(status="passed" if parity.passed else "failed", engine=engine.to_manifest(), deferred=[],
                        verified_with="engine", toolchain={**manifest["toolchain"], **avail.versions})
        manifest["build_seconds"] = round(manifest.get("build_seconds", 0) + time.perf_counter() - t0, 3)
        finalize(tmp, manifest, parity)
        writer.commit()
    return BuildResult(artifact, parity.passed, parity, manifest)


def check_parity(runner: Runner, golden: golden_mod.Golden, spec: ModelSpec | None, precision: str,
                 kinds: dict[str, str] | None = None) -> ParityReport:
    """Run the golden inputs (and the labelled evaluation set, if any) through `runner`."""
    actual = runner.run(golden.inputs)
    outputs = {}
    for name, ref in golden.outputs.items():
        kind = spec.output_kind(name) if spec is not None else OutputKind((kinds or {}).get(name, "tensor"))
        outputs[name] = compare(name, ref, actual[name], golden.tolerances.for_output(precision, name, kind))
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


def _reduce_precision(model, spec: ModelSpec, profile: TargetProfile, precision: str, golden: golden_mod.Golden,
                      work: Path, progress: Progress, calibrator: str | None):
    """Calibrate and convert the optimized float model; int8 falls back per node until the
    golden gate (and the task metric, if the spec has a labelled set) holds in ONNX Runtime."""
    float_path = work / "float.onnx"
    irh.save(model, float_path)
    if precision == "fp16":
        return precision_mod.fp16(float_path, spec, profile, work, log=progress.info)

    def gate(path: Path) -> Gate:
        with OrtRunner(path, "CPUExecutionProvider", threads=1) as runner:
            rep = check_parity(runner, golden, spec, "int8")
        parts = [f"{n}: cos {o.cosine:.4f}" + (f", top-1 {o.topk_agreement:.2f}" if o.topk_agreement is not None else "")
                 for n, o in rep.outputs.items()]
        if rep.metric is not None:
            parts.append(f"{rep.metric.name} {rep.metric.engine:.4f} (ref {rep.metric.reference:.4f})")
        return Gate(rep.passed, rep.failures(), "; ".join(parts))

    return precision_mod.int8(float_path, spec, profile, gate, work, method=calibrator, log=progress.info)


def _golden_check(golden: golden_mod.Golden, spec: ModelSpec) -> GoldenCheck:
    """Per-pass verification at the fp32 tolerances: passes run before any precision change."""

    def failures(name: str, ref: np.ndarray, got: np.ndarray) -> list[str]:
        tol = golden.tolerances.for_output("fp32", name, spec.output_kind(name))
        return compare(name, ref, got, tol).failures

    return GoldenCheck(golden.inputs, golden.outputs, failures)


def _manifest(spec: ModelSpec, profile: TargetProfile, precision: str, fe: frontend.FrontendResult, engine: Engine,
              golden: golden_mod.Golden, status: str, avail, model_files: list[str]) -> dict[str, Any]:
    return {
        "schema": 1,
        "status": status,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "name": spec.name,
            "source": spec.source,
            "source_kind": spec.source_kind.value,
            "spec": str(spec.path) if spec.path and spec.path.suffix == ".toml" else None,
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
            "seconds": round(fe.seconds, 3),
        },
        "model_files": model_files,
        "engine": engine.to_manifest(),
        "deferred": [dict(d.__dict__) for d in engine.deferred],
        "golden": {
            "dir": str(golden.dir),
            "inputs_sha256": sha256_file(golden.dir / "inputs.npz"),
            "outputs_sha256": sha256_file(golden.dir / "outputs.npz"),
            "samples": int(len(next(iter(golden.inputs.values())))),
            "reference": golden.meta.get("reference", "given"),
        },
    }


def read_manifest(artifact: Path) -> dict[str, Any]:
    path = artifact / MANIFEST
    if not path.is_file():
        raise BadInput(f"{str(artifact)!r} is not an artifact directory (no {MANIFEST}).")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BadInput(f"{str(path)!r} is not valid JSON: {e}.") from None


def load_artifact(artifact: Path, threads: int = 1, on_device: bool = False) -> tuple[dict[str, Any], Runner]:
    """The manifest and a runner for the engine of a built artifact (files checked by sha256)."""
    manifest = read_manifest(artifact)
    for f in manifest["files"]:
        p = artifact / f["path"]
        if not p.is_file() or sha256_file(p) != f["sha256"]:
            raise BadInput(f"artifact file {str(p)!r} is missing or differs from its sha256 in the manifest.")
    profile = load_profile(manifest["target"]["name"])
    backend = get_backend(manifest["engine"]["backend"])
    avail = backend.available(profile)
    if not avail.can_run:
        raise ToolchainMissing(f"the {backend.name} engine in {str(artifact)!r} cannot run on this host: {avail.reason}.")
    engine = Engine.from_manifest(artifact, manifest["engine"])
    return manifest, backend.load(engine.for_device() if on_device else engine, threads=threads)


def verify(artifact: Path, golden_dir: Path | None = None, on_device: bool = False) -> ParityReport:
    """Run the artifact's engine on golden inputs; `on_device` loads the device build (e.g. the
    aarch64 library on the board) instead of this host's twin."""
    manifest, runner = load_artifact(artifact, on_device=on_device)
    golden = golden_mod.Golden.load(golden_dir or Path(manifest["golden"]["dir"]))
    spec = None
    spec_path = manifest["model"].get("spec")
    if spec_path and Path(spec_path).is_file():
        spec = spec_mod.load_spec(Path(spec_path))
    with runner:
        return check_parity(runner, golden, spec, manifest["precision"], kinds=manifest["model"].get("outputs"))
