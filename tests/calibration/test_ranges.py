import tracemalloc

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest

from calibration.data import checked_batches
from calibration.ranges import collect, mse_threshold
from compiler import ir as irh
from compiler.datasets.factory import PythonSource
from tests.calibration.conftest import digits_batches


def _relu_outputs(model_path, batches):
    """Every Relu output over the batches, by an independent ORT run of an edited graph."""
    m = onnx.load(str(model_path))
    names = [n.output[0] for n in m.graph.node if n.op_type == "Relu"]
    for n in names:
        m.graph.output.append(onnx.ValueInfoProto(name=n))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    outs = {n: [] for n in names}
    for b in batches:
        res = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, b)))
        for n in names:
            outs[n].append(res[n])
    return {n: np.concatenate(v) for n, v in outs.items()}


def test_minmax_ranges_equal_the_true_extremes(digits_fp32):
    r = collect(digits_fp32, digits_batches(300), "minmax")
    assert r.samples == 300
    truth = _relu_outputs(digits_fp32, digits_batches(300))
    ranges = r.as_dict()
    for name, values in truth.items():
        assert ranges[name]["max"] == pytest.approx(float(values.max()), rel=1e-6)
        assert ranges[name]["min"] == pytest.approx(min(0.0, float(values.min())), abs=1e-6)


@pytest.mark.parametrize("method", ["percentile", "entropy", "mse"])
def test_clipping_calibrators_stay_within_minmax(digits_fp32, method):
    mm = collect(digits_fp32, digits_batches(200), "minmax").as_dict()
    other = collect(digits_fp32, digits_batches(200), method).as_dict()
    for name in set(mm) & set(other):
        assert other[name]["max"] <= mm[name]["max"] * 1.001 + 1e-6
    assert any(other[n]["max"] < mm[n]["max"] * 0.999 for n in set(mm) & set(other))  # something was clipped


def test_mse_threshold_matches_brute_force_quantization_error():
    """Independent check: quantize real samples at each candidate threshold (255 levels,
    clipping) and take the threshold with the least squared error."""
    rng = np.random.default_rng(0)
    for samples in (rng.laplace(0, 1, 50_000), rng.uniform(-1, 1, 50_000), rng.standard_t(3, 50_000)):
        amax = float(np.abs(samples).max())
        hist, edges = np.histogram(samples, bins=2048, range=(-amax, amax))
        candidates = np.linspace(amax / 128, amax, 128)

        def err(t):
            step = 2 * t / 255
            q = np.clip(np.round(samples / step) * step, -t, t)
            return ((samples - q) ** 2).sum()

        best = candidates[int(np.argmin([err(t) for t in candidates]))]
        assert mse_threshold(hist, edges) == pytest.approx(best, abs=3 * amax / 128)


def test_calibration_memory_is_flat_in_the_number_of_samples(digits_fp32):
    """Peak Python/numpy memory while calibrating 100 vs 2,000 samples (histogram method, batches
    of 50, streamed from an iterator factory) differs by less than 10 %."""
    inputs = irh.graph_inputs(ir.load(digits_fp32))

    def peak(n: int) -> int:
        src = PythonSource(input_names=("image",), factory="models.digits_cnn:augmented")
        tracemalloc.start()
        r = collect(digits_fp32, checked_batches(src, inputs, n, 50), "percentile")
        _, p = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert r.samples == n
        return p

    peak(100)  # warm-up: first-use imports and caches are not calibration memory
    small, large = peak(100), peak(2000)
    assert large <= small * 1.10, (small, large)


def test_fold_activations_gives_a_tensor_read_only_by_relu_or_clip_the_activations_range(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from calibration.ranges import fold_activations

    f32 = TensorProto.FLOAT
    nodes = [helper.make_node("Mul", ["x", "k"], ["a"]), helper.make_node("Relu", ["a"], ["ra"]),
             helper.make_node("Mul", ["x", "k"], ["b"]), helper.make_node("Clip", ["b", "lo", "hi"], ["cb"]),
             helper.make_node("Mul", ["x", "k"], ["s"]), helper.make_node("Relu", ["s"], ["rs"]),
             helper.make_node("Add", ["s", "rs"], ["shared"])]  # s has a second reader: unchanged
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", f32, ["n", 4])],
                          [helper.make_tensor_value_info(o, f32, None) for o in ("ra", "cb", "shared")],
                          [numpy_helper.from_array(np.array(10, np.float32), "k"),
                           numpy_helper.from_array(np.array(-1, np.float32), "lo"),
                           numpy_helper.from_array(np.array(6, np.float32), "hi")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(4, 4)
    r = collect(path, [{"x": x}], "minmax", ("Mul", "Relu", "Clip", "Add"))
    from onnxruntime.quantization.calibrate import TensorData

    # a Relu output calibrated on its own can end slightly off its input's clipped range (a
    # percentile over a spike at 0): it is set to the same range, so the two scales are equal
    r.data["ra"] = TensorData(lowest=np.array(0, np.float32), highest=np.array(19.5, np.float32))
    before = r.as_dict()
    assert before["a"] == {"min": -20.0, "max": 20.0}
    assert sorted(fold_activations(m, r)) == ["a", "b", "ra"]
    after = r.as_dict()
    assert after["a"] == after["ra"] == {"min": 0.0, "max": 20.0}  # Relu: [0, ∞) ∩ [-20, 20]
    assert after["b"] == after["cb"] == {"min": -1.0, "max": 6.0}  # Clip(-1, 6)
    assert after["s"] == before["s"] and after["rs"] == before["rs"]
