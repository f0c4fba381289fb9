"""Core ML backend (target ``apple``): our IR → MIL program (`targets.coreml.lower`) →
coremltools' MIL passes → ``model.mlpackage`` (ML Program, iOS 17 / macOS 14).

What runs where:
- Linux (this host): lower, convert, save, reload the saved package, and evaluate it op by op
  with the MIL reference evaluator (`targets.coreml.mil_eval`) against golden. That checks our
  lowering and coremltools' passes and serializer, not Apple's kernels; the manifest says so.
- macOS with coremltools' native library: ``MLModel.predict`` with the profile's compute units
  (ALL), and CPU_ONLY as a variant, each against golden (``verify --on-device``).

Precision: the precision stage hands over an IR that already says which nodes run in fp16 (range
analysis, then the gate), so conversion keeps the program's types (``compute_precision=FLOAT32``
changes nothing in a typed program) and graph I/O stays fp32 where the IR has it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from compiler.errors import ToolchainRefused
from compiler.options import Option, int_list_table
from compiler.profile import TargetProfile
from targets.base import Availability, Backend, Deferred, Engine, Runner
from targets.coreml.lower import np_dtype
from targets.coreml.package import make_deterministic
from targets.registry import register
from targets.shape_profiles import shape_ranges

ENGINE_FILE = "model.mlpackage"
COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")


def coremltools():
    """coremltools, imported without its import-time chatter (missing native libs, untested torch)."""
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools as ct

    return ct


def native_runtime() -> tuple[bool, str]:
    """Can this host run Core ML? (macOS with coremltools' ``libcoremlpython``.)"""
    if sys.platform != "darwin":
        return False, f"Core ML runs only on macOS/iOS; this host is {sys.platform}"
    try:
        import coremltools.libcoremlpython  # noqa: F401
    except ImportError as e:
        return False, f"coremltools' native library is missing ({e})"
    return True, "macOS with coremltools' native library"


@register
class CoremlBackend(Backend):
    name = "coreml"
    options = {
        "compute_units": Option(str, "ALL", "Core ML compute units", choices=("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")),
        "compress_weight_threshold": Option(int, 2048, "int8: weights with fewer elements stay float", low=0),
        "shape_profiles": Option(dict, {}, "min / opt / max per named dynamic dim", check=int_list_table),
    }
    accepts = frozenset({"LayerNormalization", "Gelu"})  # standard ONNX ops with native MIL ops

    def lowered_ops(self) -> list[str]:
        from targets.coreml import families  # noqa: F401  (registers every op family)
        from targets.coreml.lower import LOWERINGS

        return LOWERINGS.known()

    def available(self, profile: TargetProfile) -> Availability:
        try:
            ct = coremltools()
        except ImportError as e:
            return Availability(False, False, f"coremltools is not installed ({e}); pip install model-compiler[coreml]")
        runs, why = native_runtime()
        v = {"coremltools": ct.__version__}
        if runs:
            return Availability(True, True, f"coremltools {ct.__version__} converts and MLModel.predict runs here", v)
        return Availability(True, False, f"coremltools {ct.__version__} builds and saves the .mlpackage here, but {why}: "
                            "parity is checked by MIL reference evaluation of the saved package (not the Core ML runtime); "
                            "predict on a Mac with `verify --on-device`", v)

    def compile(self, model: ir.Model, model_path: Path, profile: TargetProfile, precision: str, workdir: Path) -> Engine:
        from targets.coreml import mil_eval
        from targets.coreml.convert import lower
        from targets.coreml.lower import OPSET

        ct = coremltools()
        lowered = lower(model)
        ranges = shape_ranges(model, profile)
        inputs = [ct.TensorType(i["mil_name"], shape=_shape(ct, ranges[i["name"]]), dtype=np_dtype(i["dtype"]))
                  for i in lowered.inputs]
        outputs = [ct.TensorType(o["mil_name"], dtype=np_dtype(o["dtype"])) for o in lowered.outputs]
        units = str(profile.option("compute_units", "ALL"))
        if units not in COMPUTE_UNITS:
            from compiler.errors import BadInput

            raise BadInput(f"{profile.path}: options.compute_units = {units!r}; Core ML has {', '.join(COMPUTE_UNITS)}.")
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # coremltools' per-pipeline progress bars
                mlmodel = ct.convert(lowered.program, convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, OPSET),
                                     compute_precision=ct.precision.FLOAT32, compute_units=getattr(ct.ComputeUnit, units),
                                     inputs=inputs, outputs=outputs)
        except (ValueError, TypeError, NotImplementedError) as e:  # e.g. "Core ML only supports tensors with rank <= 5"
            raise ToolchainRefused(f"coremltools refused the lowered program: {' '.join(str(e).split())[:500]}") from e
        compression = None
        if precision == "int8":
            mlmodel, compression = _compress_weights(ct, mlmodel, profile)
        mlmodel.short_description = f"{model.graph.name or 'model'} built by model-compiler ({precision})"
        mlmodel.save(str(workdir / ENGINE_FILE))
        make_deterministic(workdir / ENGINE_FILE)  # item UUIDs, conversion date, map order, 0600 files
        # what the package holds, read back from disk: the I/O names Core ML will use, the op set
        spec, program = mil_eval.load_program(workdir / ENGINE_FILE)
        saved_in = [f.name for f in spec.description.input]
        saved_out = [f.name for f in spec.description.output]
        for io_, saved in ((lowered.inputs, saved_in), (lowered.outputs, saved_out)):
            for entry, name in zip(io_, saved):
                entry["mil_name"] = name
        files = sorted(str(p.relative_to(workdir)) for p in (workdir / ENGINE_FILE).rglob("*") if p.is_file())
        info: dict[str, Any] = {
            "format": "mlprogram",
            "minimum_deployment_target": f"{OPSET} / macOS14",
            "specification_version": spec.specificationVersion,
            "compute_units": units,
            "compute_precision": "as typed by the precision stage (fp16 nodes fp16, the rest fp32)",
            "inputs": lowered.inputs, "outputs": lowered.outputs,
            "flexible_shapes": {k: {"min": list(v[0]), "max": list(v[2])} for k, v in ranges.items()},
            "mil_ops": mil_eval.op_histogram(program),
            "lowered_onnx_ops": dict(sorted(lowered.ops.items())),
            **({"weight_compression": compression} if compression else {}),
            "host_check": mil_eval.WHAT,
            "coremltools": ct.__version__,
        }
        deferred = [Deferred(
            "verify-on-device",
            "Core ML's runtime (MLModel.predict on CPU, GPU and Neural Engine) exists only on Apple devices; "
            "this host evaluated the saved package with the MIL reference evaluator",
            "python -m compiler verify --artifact {artifact} --on-device   # on a Mac: MLModel.predict with ALL, and CPU_ONLY",
        )]
        return Engine(self.name, precision, workdir, ENGINE_FILE, files, info, deferred)

    def load(self, engine: Engine, threads: int = 1) -> Runner:
        return CoremlRunner(engine, engine.info.get("compute_units", "ALL"))

    def variants(self, engine: Engine, threads: int = 1) -> dict[str, Runner]:
        if engine.info.get("compute_units", "ALL") == "CPU_ONLY":
            return {}
        return {"Core ML CPU_ONLY": CoremlRunner(engine, "CPU_ONLY")}

    def host_check(self, engine: Engine) -> Runner | None:
        from targets.coreml.mil_eval import MilRunner

        return MilRunner(engine.dir / engine.entry, engine.info["inputs"], engine.info["outputs"])


def _compress_weights(ct, mlmodel, profile: TargetProfile):
    """int8 on Core ML = weight-only linear quantization (coremltools.optimize): each large
    constant weight stored as int8 with a per-output-channel scale, dequantized on load
    (``constexpr_affine_dequantize``); compute keeps the program's float types."""
    import coremltools.optimize.coreml as cto

    scheme = profile.quantization
    threshold = int(profile.option("compress_weight_threshold", 2048))
    config = cto.OpLinearQuantizerConfig(mode="linear_symmetric" if scheme.weight_symmetric else "linear",
                                         dtype=scheme.weight_type, granularity="per_channel" if scheme.per_channel else "per_tensor",
                                         weight_threshold=threshold)
    with contextlib.redirect_stderr(io.StringIO()):  # progress bars
        compressed = cto.linear_quantize_weights(mlmodel, config=cto.OptimizationConfig(global_config=config))
    ops = Counter(op.op_type for op in compressed._mil_program.functions["main"].operations)
    return compressed, {
        "method": "coremltools.optimize.coreml.linear_quantize_weights",
        "mode": _enum(config.mode), "dtype": scheme.weight_type, "granularity": _enum(config.granularity),
        "weight_threshold_elements": threshold, "compressed_weights": ops.get("constexpr_affine_dequantize", 0),
        "preset": scheme.preset,
    }


def _enum(v) -> str:
    return str(getattr(v, "name", v)).lower()


def _shape(ct, r: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]):
    lo, opt, hi = r
    if lo == hi:
        return lo
    return ct.Shape([a if a == b else ct.RangeDim(lower_bound=a, upper_bound=b, default=o) for a, o, b in zip(lo, opt, hi)])


class CoremlRunner(Runner):
    """``MLModel.predict`` on macOS (never constructed elsewhere: `available` says it cannot run)."""

    def __init__(self, engine: Engine, units: str):
        ct = coremltools()
        self.inputs, self.outputs = engine.info["inputs"], engine.info["outputs"]
        self.model = ct.models.MLModel(str(engine.dir / engine.entry), compute_units=getattr(ct.ComputeUnit, units))
        self.input_names = tuple(i["name"] for i in self.inputs)
        self.output_names = tuple(o["name"] for o in self.outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from targets.coreml.mil_eval import from_coreml, to_coreml

        got = self.model.predict({i["mil_name"]: to_coreml(feeds[i["name"]], i).astype(np_dtype(i["dtype"])) for i in self.inputs})
        return {o["name"]: from_coreml(got[o["mil_name"]], o) for o in self.outputs}
