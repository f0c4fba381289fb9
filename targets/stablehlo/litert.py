"""The one place that calls litert-converter (0.x, undocumented Python API, pinned in
pyproject.toml): StableHLO text → ``.tflite`` bytes, and reading a ``.tflite`` back.

The calls are the ones litert-torch makes (``prepare_mlir_context``, ``set_signature``,
``run_convert_to_tfl_passes``, ``export_flatbuffer_to_bytes``). Q/DQ pairs arrive as
``stablehlo.custom_call @odml_torch.uniform_quantize / uniform_dequantize`` (the convention the
converter's LegalizeQDQCustomCall pass reads), and ``qdq_conversion_mode="STATIC"`` turns them
into integer kernels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SIGNATURE = "serving_default"


def convert(text: str, inputs: list[str], outputs: list[str], quantized: bool) -> bytes:
    """In a forked child (`targets.isolate`): the converter aborts the process on some inputs."""
    from targets.isolate import in_child

    return in_child(lambda: _convert(text, inputs, outputs, quantized), "litert-converter")


def _convert(text: str, inputs: list[str], outputs: list[str], quantized: bool) -> bytes:
    from litert_converter import converter_api_ext as api
    from litert_converter.mlir import ir as mlir
    from litert_converter.mlir import passmanager

    ctx = mlir.Context()
    api.prepare_mlir_context(ctx)
    with ctx:
        try:
            module = mlir.Module.parse(text)
            api.set_signature(module.operation, SIGNATURE, inputs, outputs)
            cfg = api.ConvertToTFLConfig()
            cfg.model_origin_framework = "PYTORCH"  # NCHW layout conventions, as litert-torch sets
            if quantized:
                cfg.qdq_conversion_mode = "STATIC"
            cfg.unsafe_fuse_dynamic_shaped_broadcast = True
            api.run_convert_to_tfl_passes(module, passmanager.PassManager(), cfg)
            return api.export_flatbuffer_to_bytes(module.operation)
        except ValueError as e:
            # The bindings raise ValueError with the MLIR diagnostic; as a RuntimeError it is what
            # the pipeline's toolchain_step reports as the toolchain's refusal (exit 2, ops named).
            raise RuntimeError(f"litert-converter: {e}") from None


# the ops LiteRT's float16 quantization stores weights for (ai-edge-quantizer's FLOAT_CASTING
# algorithm registers exactly these); everything else keeps float32 constants
FP16_WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D_TRANSPOSE", "EMBEDDING_LOOKUP")


def fp16_weights(data: bytes) -> bytes:
    """The .tflite with the constant weights of FP16_WEIGHT_OPS stored in float16 and a DEQUANTIZE
    before each reader (compute stays float32): LiteRT's own quantizer (ai-edge-quantizer), the
    recipe its float16 weight-only test uses."""
    import contextlib
    import io

    from ai_edge_quantizer import qtyping, quantizer

    q = quantizer.Quantizer(bytes(data))
    for op in FP16_WEIGHT_OPS:
        q.update_quantization_recipe(
            regex=".*", operation_name=getattr(qtyping.TFLOperationName, op),
            algorithm_key=quantizer.AlgorithmName.FLOAT_CASTING,
            op_config=qtyping.OpQuantizationConfig(
                weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
                compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its size summary, tqdm
        return bytes(q.quantize().quantized_model)


def dynamic_int8_weights(data: bytes) -> bytes:
    """The .tflite with LiteRT's dynamic-range quantization: constant weights of the ops its
    quantizer supports in int8 per channel, activations float32 and quantized on the fly by the
    hybrid kernels — ai-edge-quantizer's own `dynamic_wi8_afp32` recipe."""
    import contextlib
    import io

    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(bytes(data))
    q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its size summary, tqdm
        return bytes(q.quantize().quantized_model)


@dataclass
class Inspection:
    ops: Counter = field(default_factory=Counter)          # TFLite builtin op → count
    versions: dict[str, int] = field(default_factory=dict)  # op → highest version used
    int8_kernels: Counter = field(default_factory=Counter)  # compute op → count running on int8 inputs
    float_kernels: Counter = field(default_factory=Counter)  # compute op → count running on float inputs
    min_runtime: str | None = None
    fp16_weights: int = 0  # float16 constants a DEQUANTIZE widens (LiteRT's float16 quantization)
    hybrid_kernels: Counter = field(default_factory=Counter)  # compute op → count with float input, int8 weights
    # each signature input, then output: its type and, when integer, the scale and zero point an
    # app (and our runner) applies
    io: dict[str, dict] = field(default_factory=dict)


COMPUTE = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV", "CONV_3D")


def inspect(path: Path) -> Inspection:
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    out = Inspection()
    for sg in model.subgraphs:
        for op in sg.operators:
            code = model.operatorCodes[op.opcodeIndex]
            name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), f"CUSTOM:{code.customCode}")
            out.ops[name] += 1
            out.versions[name] = max(out.versions.get(name, 0), code.version)
            if name == "DEQUANTIZE" and types[sg.tensors[op.inputs[0]].type] == "FLOAT16":
                out.fp16_weights += 1
            if name in COMPUTE:
                t = types[sg.tensors[op.inputs[0]].type]
                w = types[sg.tensors[op.inputs[1]].type] if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
                if t in ("INT8", "UINT8", "INT16"):
                    out.int8_kernels[name] += 1
                elif w == "INT8":  # dynamic range: float activations, int8 weights
                    out.hybrid_kernels[name] += 1
                else:
                    out.float_kernels[name] += 1
    sig = model.signatureDefs[0]
    sg = model.subgraphs[sig.subgraphIndex]
    for entry in [*sig.inputs, *sig.outputs]:
        t = sg.tensors[entry.tensorIndex]
        dtype = np.dtype(types[t.type].lower())
        scale = t.quantization.scale if t.quantization is not None else None
        q = {}
        if dtype.kind in "iu" and scale is not None and len(scale) and scale[0]:
            q = {"scale": float(scale[0]), "zero_point": int(t.quantization.zeroPoint[0])}
        out.io[_text(entry.name)] = {"dtype": dtype.name} | q
    for m in model.metadata or []:
        if _text(m.name) == "min_runtime_version":
            data = model.buffers[m.buffer].data
            raw = b"" if data is None else bytes(np.asarray(data, np.uint8))
            out.min_runtime = raw.split(b"\0")[0].decode() or None
    return out


def _text(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else name
