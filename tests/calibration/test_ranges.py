import tracemalloc

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest

from calibration.data import checked_batches
from calibration.ranges import collect, mse_threshold
from compiler import ir as irh
from compiler.datasets import PythonSource
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
