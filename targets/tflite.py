"""TFLite / LiteRT backend (target ``android``): our IR → StableHLO → litert-converter →
``model.tflite``, run in the LiteRT Interpreter.

Lowering path, chosen with evidence (docs/toolchains.md): the converter owns NCHW→NHWC
layout, bias/activation fusion, op versions and integer kernels, and took hand-written NCHW
StableHLO (with dynamic dims) to CONV_2D / FULLY_CONNECTED with correct versions; writing the
flatbuffer ourselves would mean owning all of that. Our part is ONNX → StableHLO
(``targets/stablehlo``), one module per op family.

Verification runs the same file twice: with XNNPACK (the default delegate, what Android runs)
and with the reference kernels (``OpResolverType.BUILTIN_REF``), each against golden. The
``.tflite`` does not depend on the CPU architecture; this x86-64 host runs it with x86 kernels,
an arm64 device with arm64 ones (``verify --on-device`` there).
"""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path

import numpy as np
import onnx_ir as ir

from compiler.errors import BadInput, CompilerError
from compiler.profile import TargetProfile
from targets.base import Availability, Backend, Deferred, Engine, Runner
from targets.isolate import in_child
from targets.native_stderr import quiet_native_stderr
from targets.registry import register

ENGINE_FILE = "model.tflite"
KERNELS = {"xnnpack": "XNNPACK delegate (the default)", "reference": "reference kernels (BUILTIN_REF)"}


def _versions() -> dict[str, str]:
    return {p: importlib.metadata.version(p) for p in ("ai-edge-litert", "litert-converter")}


@register
class TfliteBackend(Backend):
    name = "tflite"
    accepts = frozenset({"LayerNormalization", "Gelu"})  # standard ONNX ops we lower ourselves

    def lowered_ops(self) -> list[str]:
        from targets.stablehlo import families  # noqa: F401  (registers every op family)
        from targets.stablehlo.emit import LOWERINGS

        return LOWERINGS.known()

    def available(self, profile: TargetProfile) -> Availability:
        try:
            import ai_edge_litert  # noqa: F401
            import litert_converter  # noqa: F401
        except ImportError as e:
            return Availability(False, False, f"{e.name} is not installed ({e}); pip install model-compiler[tflite]")
        v = _versions()
        return Availability(True, True, f"litert-converter {v['litert-converter']} converts; the LiteRT Interpreter "
                            f"(ai-edge-litert {v['ai-edge-litert']}) runs the .tflite here with XNNPACK and with "
                            "reference kernels; the device runs the same file with its own kernels", v)

    def compile(self, model: ir.Model, model_path: Path, profile: TargetProfile, precision: str, workdir: Path) -> Engine:
        from targets.stablehlo import litert
        from targets.stablehlo.module import lower

        lowered = lower(model)
        quantized = precision == "int8"
        # a converter refusal is a RuntimeError: the pipeline's toolchain_step names the ops
        data = litert.convert(lowered.text, lowered.inputs, lowered.outputs, quantized)
        fp32_bytes = len(data)
        if precision == "fp16":  # float16 weights, float32 compute (the profile's fp16 = "weights")
            data = litert.fp16_weights(data)
        elif precision == "int8-dynamic":  # int8 weights, activations quantized at run time
            data = litert.dynamic_int8_weights(data)
        (workdir / ENGINE_FILE).write_bytes(data)
        found = litert.inspect(workdir / ENGINE_FILE)
        if quantized and _quantized_compute(model) and not found.int8_kernels:
            raise CompilerError(f"the int8 build produced no integer kernel (compute ops {dict(found.float_kernels)}).")
        info = {
            "signature": litert.SIGNATURE,
            "inputs": lowered.inputs, "outputs": lowered.outputs,
            "tflite_ops": dict(sorted(found.ops.items())), "op_versions": dict(sorted(found.versions.items())),
            "min_runtime_version": found.min_runtime,
            "int8_kernels": dict(found.int8_kernels), "float_kernels": dict(found.float_kernels),
            "lowered_onnx_ops": dict(sorted(lowered.ops.items())),
            "verified_kernels": list(KERNELS.values()),
            **_versions(),
        }
        if quantized:
            info["io"] = found.io
        if precision == "fp16":
            info["fp16_weights"] = found.fp16_weights
        if precision == "int8-dynamic":
            info["hybrid_kernels"] = dict(found.hybrid_kernels)
            if not found.hybrid_kernels:
                raise BadInput("int8-dynamic: LiteRT's quantizer left no kernel with int8 weights (compute ops "
                               f"{dict(found.float_kernels)}): the model has nothing it quantizes dynamically; choose "
                               "another --precision.")
        if precision in ("fp16", "int8-dynamic"):
            info["size_vs_fp32"] = round(len(data) / fp32_bytes, 3)
        deferred = [Deferred(
            "verify-on-device",
            f"{ENGINE_FILE} was verified here with this host's ({platform.machine()}) kernels; "
            f"the device's {profile.device.arch} kernels are not run here",
            "python -m compiler verify --artifact {artifact} --on-device",
        )]
        return Engine(self.name, precision, workdir, ENGINE_FILE, [ENGINE_FILE], info, deferred)

    def load(self, engine: Engine, threads: int = 1) -> Runner:
        return TfliteRunner(engine.dir / engine.entry, engine.info["inputs"], engine.info["outputs"], threads, "xnnpack")

    def variants(self, engine: Engine, threads: int = 1) -> dict[str, Runner]:
        return {KERNELS["reference"]: TfliteRunner(engine.dir / engine.entry, engine.info["inputs"], engine.info["outputs"],
                                                   threads, "reference")}


# LiteRT failing to load, prepare or run a .tflite this project wrote (on inputs ONNX Runtime runs)
# is a fault of our lowering, not of the user's model: the message says so
LOWERING_FAULT = ("the .tflite written by model-compiler's TFLite lowering fails in LiteRT — a fault of the lowering, "
                  "not of your model (please report it with the model)")


class TfliteRunner(Runner):
    def __init__(self, path: Path, inputs: list[str], outputs: list[str], threads: int, kernels: str):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from targets.stablehlo.litert import SIGNATURE

        resolver = OpResolverType.BUILTIN_REF if kernels == "reference" else OpResolverType.AUTO

        def make():
            try:
                interpreter = Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver)
            except ValueError as e:  # e.g. "Didn't find op for builtin opcode 'CEIL'" in the reference kernels
                raise RuntimeError(f"LiteRT ({KERNELS[kernels]}): {e}") from None
            return interpreter, interpreter.get_signature_runner(SIGNATURE)

        self._make = make
        self.what = f"LiteRT ({KERNELS[kernels]}) running {path.name}"
        with quiet_native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            try:
                self.interpreter, self.runner = make()
            except RuntimeError as e:
                raise RuntimeError(f"{LOWERING_FAULT}: {e}") from None
        self.input_names, self.output_names = tuple(inputs), tuple(outputs)
        self._probed: set[tuple] = set()

        # A full-integer model takes and returns int8 where the graph's I/O is quantized (the
        # converter folds the first Quantize / last Dequantize into the I/O tensors); like an
        # app, the runner converts with the tensor's own scale and zero point.
        self.in_q = {n: _qparams(d) for n, d in self.runner.get_input_details().items()}
        self.out_q = {n: _qparams(d) for n, d in self.runner.get_output_details().items()}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = {n: _quantize(np.asarray(feeds[n], order="C"), self.in_q.get(n)) for n in self.input_names}
        key = tuple((n, a.shape, a.dtype.str) for n, a in args.items())
        if key not in self._probed:
            # LiteRT aborts the process on some models (e.g. a uint8 EQUAL) instead of raising:
            # each new input signature is tried first in a forked child (`targets.isolate`)
            def probe() -> None:
                self._make()[1](**args)
            try:
                in_child(probe, self.what)
            except RuntimeError as e:  # the file is ours: its failure is the lowering's, said so
                raise RuntimeError(f"{LOWERING_FAULT}: {e}") from None
            self._probed.add(key)
            with quiet_native_stderr():  # XNNPACK announces itself on fd 2 at the first invoke
                out = self.runner(**args)
        else:
            out = self.runner(**args)
        return {n: _dequantize(out[n], self.out_q.get(n)) for n in self.output_names}


def _qparams(details: dict) -> tuple[np.dtype, float, int] | None:
    scale, zp = details.get("quantization", (0.0, 0))
    if np.dtype(details["dtype"]).kind not in "iu" or not scale:
        return None
    return np.dtype(details["dtype"]), float(scale), int(zp)


def _quantize(x: np.ndarray, q: tuple[np.dtype, float, int] | None) -> np.ndarray:
    if q is None or x.dtype.kind != "f":
        return x
    dtype, scale, zp = q
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, q: tuple[np.dtype, float, int] | None) -> np.ndarray:
    if q is None:
        return y
    _, scale, zp = q
    return ((y.astype(np.int32) - zp) * np.float32(scale)).astype(np.float32)


def _quantized_compute(model: ir.Model) -> bool:
    """Does a Conv/MatMul/Gemm read a DequantizeLinear output? (An int8 build whose fallback sent
    every compute node back to float legitimately has no integer kernel.)"""
    return any(n.op_type in ("Conv", "MatMul", "Gemm") and any(
        i is not None and i.producer() is not None and i.producer().op_type == "DequantizeLinear" for i in n.inputs)
        for n in model.graph)
