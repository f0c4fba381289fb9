"""Everything that can reject a build request, before anything is written.

The spec, the target profile, the precision, the calibration data, the toolchain, the golden
set and every output path are resolved and checked here; the result is a `BuildContext` whose
first block the stages only read. A factory model without a golden set gets one here (PyTorch
eager on its own inputs), so one command builds it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from compiler import golden as golden_mod, spec as spec_mod
from compiler.artifact.slot import IR_DUMP, OutputSlot
from compiler.build.context import BuildContext, BuildOptions
from compiler.cache import Cache
from compiler.errors import BadInput, ToolchainMissing
from compiler.passes import get_pipeline
from compiler.precision import GRAPH_REDUCED, Precision
from compiler.profile import TargetProfile
from compiler.progress import Progress
from compiler.spec import ModelSpec
from targets import get_backend, load_profile


def resolve_spec(model: str | ModelSpec, profile: TargetProfile, precision: Precision, opts: BuildOptions) -> ModelSpec:
    """The spec with the options that override it (calibration data, exporter, trust)."""
    spec = model if isinstance(model, ModelSpec) else spec_mod.resolve(model)
    spec = dataclasses.replace(spec, trust_pickle=opts.trust_pickle)
    if opts.calib is not None:
        spec = dataclasses.replace(spec, calibration=spec_mod.calib_from_cli(opts.calib, spec.batch_axes))
    if opts.calib_samples is not None:
        if opts.calib_samples < 1:
            raise BadInput(f"--calib-samples must be ≥ 1, got {opts.calib_samples}.")
        if spec.calibration is not None:
            spec = dataclasses.replace(spec, calibration=dataclasses.replace(spec.calibration, samples=opts.calib_samples))
    weights_only = profile.quantization is not None and profile.quantization.weights_only
    if precision is Precision.INT8 and spec.calibration is None and not weights_only:
        toml = repr(str(spec.path)) if spec.path and spec.path.suffix == ".toml" else None
        raise BadInput(
            f"int8 for {spec.name!r} needs calibration data and " + (f"{toml} names none" if toml else "none was given")
            + ": pass --calib DATA (an .npz keyed by input name, or package.module:factory returning {input: array}) "
            f"or add a [calibration] table to {toml or 'a spec TOML'}; or choose another --precision "
            f"(target {profile.name!r} allows {', '.join(profile.precisions)})."
        )
    if spec.calibration is not None and precision in GRAPH_REDUCED:
        spec.calibration.data.check()  # a mistyped factory is named now, not after the export
    if opts.exporter is not None:
        spec = dataclasses.replace(spec, export=dataclasses.replace(spec.export, exporter=spec_mod.Exporter(opts.exporter)))
    if opts.keep_float:
        spec = dataclasses.replace(spec, keep_float=tuple(dict.fromkeys((*spec.keep_float, *opts.keep_float))))
    return spec


def check_disjoint(paths: dict[str, Path]) -> None:
    """No output may lie inside another given directory (or be it): `--out` inside the golden
    set would write into it, a dump inside `--out` would vanish with the swap."""
    resolved = {flag: p.resolve() for flag, p in paths.items()}
    for a, pa in resolved.items():
        for b, pb in resolved.items():
            if a != b and a != "--golden" and (pa == pb or pa.is_relative_to(pb)):
                rel = "is" if pa == pb else "lies inside"
                raise BadInput(f"refusing to write {a} {str(paths[a])!r}: it {rel} {b} {str(paths[b])!r}; "
                               f"choose a {a} outside it.")


def default_out(profile: TargetProfile, spec: ModelSpec) -> Path:
    return Path("build") / profile.name / spec.name


def golden_dir_of(spec: ModelSpec, opts: BuildOptions) -> Path:
    if opts.golden_dir is not None and not opts.golden_dir.is_dir():
        what = "is a file, not a directory" if opts.golden_dir.exists() else "does not exist"
        raise BadInput(f"--golden {str(opts.golden_dir)!r} {what}: give a directory with inputs.npz and outputs.npz "
                       "keyed by the graph's input/output names.")
    return opts.golden_dir or golden_mod.GOLDEN_ROOT / spec.name


def prepare(model: str | ModelSpec, target: str | Path, opts: BuildOptions, progress: Progress,
            cache: Cache | None = None) -> BuildContext:
    profile = load_profile(target)
    pipeline = opts.pipeline or profile.pipeline
    get_pipeline(pipeline)
    precision = profile.check_precision(opts.precision)
    spec = resolve_spec(model, profile, precision, opts)
    model_arg = model if isinstance(model, str) else spec.source
    backend = get_backend(profile.backend)
    avail = backend.available(profile)
    if not avail.can_compile:
        raise ToolchainMissing(f"target {profile.name!r} ({profile.backend}) cannot compile on this host: {avail.reason}.")
    golden_dir = golden_dir_of(spec, opts)
    out = opts.out or default_out(profile, spec)
    dump_ir = opts.dump_ir
    if dump_ir is not None and dump_ir.exists() and not dump_ir.is_dir():
        raise BadInput(f"--dump-ir {str(dump_ir)!r} is a file; give a directory for the per-pass models.")
    check_disjoint({"--out": out, "--golden": golden_dir, **({"--dump-ir": dump_ir} if dump_ir is not None else {})})
    slot = OutputSlot(out, log=progress.info)
    slot.check()
    dump_slot = OutputSlot(dump_ir, IR_DUMP, log=progress.info) if dump_ir is not None else None
    if dump_slot is not None:
        dump_slot.check()
    if not golden_dir.is_dir():
        golden_dir = make_golden(spec, model_arg, golden_dir, progress)
    golden = golden_mod.Golden.load(golden_dir)
    cache = cache or Cache.open(opts.cache_dir, opts.use_cache)
    return BuildContext(model_arg=model_arg, spec=spec, profile=profile, precision=precision, options=opts, backend=backend,
                        avail=avail, golden=golden, pipeline=pipeline, out=out, progress=progress, cache=cache, slot=slot,
                        dump_slot=dump_slot, volatile={"golden_source": str(golden_dir)})


def make_golden(spec: ModelSpec, model_arg: str, golden_dir: Path, progress: Progress) -> Path:
    """No golden set yet: compute it from PyTorch eager fp32 (the spec's [golden] inputs or the
    factory's example inputs), as `make build` does, so one command builds a factory model."""
    if spec.source_kind is spec_mod.SourceKind.ONNX:
        raise BadInput(f"{spec.source!r} is an ONNX file and {str(golden_dir)!r} does not exist: pass --golden DIR "
                       "with inputs.npz and outputs.npz keyed by its graph input/output names.")
    progress.info(f"no golden set at {golden_dir}: computing it from PyTorch eager fp32 "
                  f"(as `python -m compiler golden --model {model_arg}`)")
    with progress.step(f"golden: {spec.name}"):
        return golden_mod.generate(spec, golden_dir, log=progress.info, commit=False)
