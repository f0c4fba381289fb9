"""Full-integer lowering of our QDQ models: every Conv / Gemm runs an int8 kernel, read back
from the .tflite's tensor types, and the numbers stay within a few int8 steps of ONNX Runtime's
QDQ simulation of the same model."""

from __future__ import annotations

import numpy as np
from onnx import helper

from calibration import qdq, ranges
from compiler.profile import load_profile
from targets.stablehlo import litert
from targets.tflite import TfliteRunner
from tests.targets.stablehlo.helpers import graph_model, to_tflite

F32 = np.float32


def _batches(seed: int, n: int = 4):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(0, 1, (4, 3, 8, 8)).astype(F32)} for _ in range(n)]


def _exact(path, feeds) -> np.ndarray:
    """The QDQ model's own meaning, from ONNX's reference evaluator: ONNX Runtime's int8 kernels on
    an AVX2 host without VNNI saturate u8·s8 pair sums (vpmaddubsw) and are off by many steps
    there (measured: 1.24 against a step of 0.057 on an AMD EPYC with AVX2 only)."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    m = onnx.load(str(path))
    for o in m.opset_import:  # the evaluator has Q/DQ from 19 on (the same meaning for int8)
        if o.domain in ("", "ai.onnx"):
            o.version = max(o.version, 21)
    return ReferenceEvaluator(m).run(["y"], feeds)[0]


def test_conv_relu6_and_transposed_gemm_run_int8_kernels(tmp_path):
    """Conv → Clip(0, 6) → GlobalAveragePool → Flatten → Gemm(transB=1) writing the graph output.
    The Gemm's weight is [N, K] (transB): contracted in place, not transposed after its
    dequantize, it folds into an int8 FULLY_CONNECTED."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1)]
    inits = {"w": rng.normal(0, 3, (16, 3, 3, 3)).astype(F32), "b": rng.normal(0, 1, 16).astype(F32),
             "lo": np.array(0, F32), "hi": np.array(6, F32),
             "fc": rng.normal(0, 0.5, (10, 16)).astype(F32), "fcb": rng.normal(0, 0.1, 10).astype(F32)}
    m = graph_model(nodes, {"x": (F32, ["batch", 3, 8, 8])}, {"y": F32}, inits, opset=17)
    f = tmp_path / "f.onnx"
    import onnx

    onnx.save(m, str(f))
    scheme = load_profile("android").quantization
    r = ranges.collect(f, _batches(1), "minmax", scheme.op_types)
    assert "c" in ranges.fold_activations(m, r)  # the conv output takes ReLU6's [0, 6]
    lo, hi = (float(np.asarray(v)) for v in r.data["c"].range_value)
    assert (lo, hi) == (0.0, 6.0)
    q = qdq.quantize(f, tmp_path / "q.onnx", r, scheme)
    path, ins, outs = to_tflite(q, tmp_path, quantized=True)
    found = litert.inspect(path)
    assert found.int8_kernels.get("CONV_2D") == 1 and found.int8_kernels.get("FULLY_CONNECTED") == 1, found.int8_kernels
    assert not found.float_kernels, found.float_kernels
    x = _batches(2, 1)[0]
    want = _exact(tmp_path / "q.onnx", x)
    step = float(np.max(r.data["y"].range_value[1]) - np.min(r.data["y"].range_value[0])) / 255
    for kernels in ("xnnpack", "reference"):
        with TfliteRunner(path, ins, outs, 1, kernels) as runner:
            got = runner.run(x)["y"]
        assert np.abs(got - want).max() <= 3 * step, (kernels, np.abs(got - want).max(), step)
