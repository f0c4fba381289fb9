"""Channel equalization (calibration/smooth.py): exact in float, better in int8, and placed where
the graph allows (folded into a LayerNormalization only its MatMuls read, else a float Mul)."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from calibration import qdq, ranges, smooth
from compiler import ortsession
from compiler.profile import load_profile
from compiler.verify import snr_db

C, H = 16, 32


def _model(residual: bool) -> onnx.ModelProto:
    """x → LayerNorm → {MatMul W1 → Add b1 → Relu → z1, MatMul W2 → y2} (+ LayerNorm output → Add → r).

    LayerNorm's γ puts an outlier in input channel 3; W1's column 5 makes an outlier output channel."""
    rng = np.random.default_rng(0)
    gamma = np.ones(C, np.float32)
    gamma[3] = 40.0
    w1 = rng.normal(0, 0.2, (C, H)).astype(np.float32)
    w1[:, 5] *= 150
    w2 = rng.normal(0, 0.2, (C, H)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in [(gamma, "gamma"), (np.zeros(C, np.float32), "beta"),
                                                          (w1, "w1"), (w2, "w2"), (rng.normal(0, 0.1, H).astype(np.float32), "b1")]]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["ln"], name="ln", axis=-1),
        helper.make_node("MatMul", ["ln", "w1"], ["m1"], name="mm1"),
        helper.make_node("Add", ["m1", "b1"], ["y1"], name="bias1"),
        helper.make_node("Relu", ["y1"], ["z1"], name="relu1"),
        helper.make_node("MatMul", ["ln", "w2"], ["y2"], name="mm2"),
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", H]) for n in ("z1", "y2")]
    if residual:
        nodes.append(helper.make_node("Add", ["ln", "x"], ["r"], name="residual"))
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, ["n", C]))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", C])], outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _batches(n: int = 4, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(0, 1, (64, C)).astype(np.float32)} for _ in range(n)]


def _run(m: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    return ortsession.session(m).run(None, feeds)


def test_equalized_model_computes_the_same_in_float():
    for residual in (False, True):
        m = _model(residual)
        eq = smooth.equalize(m, _batches())
        x = _batches(1, seed=7)[0]
        for a, b in zip(_run(m, x), _run(eq.model, x)):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


def test_smoothing_folds_into_a_layernorm_only_matmuls_read_else_inserts_a_float_mul():
    alone = smooth.equalize(_model(residual=False), _batches())
    (grp,) = alone.inputs
    assert grp.tensor == "ln" and sorted(grp.matmuls) == ["mm1", "mm2"]
    assert grp.alpha is not None and grp.folded_into == "ln" and grp.mul is None
    gamma = numpy_helper.to_array(next(i for i in alone.model.graph.initializer if i.name == "gamma"))
    assert gamma[3] < 40.0  # the outlier channel was divided by its smoothing scale

    shared = smooth.equalize(_model(residual=True), _batches())
    (grp,) = shared.inputs
    assert grp.folded_into is None and grp.mul == "smooth/ln"
    ops = {n.name: n for n in shared.model.graph.node}
    assert list(ops["mm1"].input)[0] == "smooth/ln/out" and list(ops["residual"].input)[0] == "ln"
    assert "smooth/ln" in shared.float_nodes()


def test_outlier_output_channel_is_scaled_after_the_bias_add():
    eq = smooth.equalize(_model(residual=False), _batches(), out_ratio=4.0)
    scaled = {g.tensor: g for g in eq.outputs}
    assert "y1" in scaled and scaled["y1"].imbalance > 50  # W1's column 5
    ops = {n.name: n for n in eq.model.graph.node}
    mul = ops["smooth/out/y1"]
    assert list(mul.input)[0] == "y1" and list(ops["relu1"].input) == ["smooth/out/y1/out"]
    b1 = numpy_helper.to_array(next(i for i in eq.model.graph.initializer if i.name == "b1"))
    b1_before = numpy_helper.to_array(next(i for i in _model(False).graph.initializer if i.name == "b1"))
    assert abs(b1[5]) < abs(b1_before[5])  # the bias column was divided with its weight column
    # the MatMul's own output now stays within ratio × the median channel (the outlier is gone)
    m = onnx.ModelProto()
    m.CopyFrom(eq.model)
    m.graph.output.append(onnx.ValueInfoProto(name="m1"))
    m1 = np.concatenate([ortsession.session(m).run(["m1"], b)[0] for b in _batches()])
    per_channel = np.abs(m1).max(axis=0)
    assert per_channel.max() <= 4.0 * np.median(per_channel) * 1.01


def test_graph_outputs_keep_their_names():
    m = _model(residual=False)
    eq = smooth.equalize(m, _batches())
    assert [o.name for o in eq.model.graph.output] == [o.name for o in m.graph.output]
    onnx.checker.check_model(eq.model, full_check=True)


def test_int8_error_drops_with_equalization(tmp_path):
    """Per-tensor int8 activations, per-channel weights (the tflite preset, MatMuls only): the
    equalized model's int8 outputs are closer to float than the plain model's."""
    scheme = dataclasses.replace(load_profile("android").quantization, op_types=("MatMul",))
    x = _batches(1, seed=9)[0]
    ref = _run(_model(False), x)
    snrs = {}
    eq = smooth.equalize(_model(False), _batches())
    for name, m, helpers in [("plain", _model(False), []), ("equalized", eq.model, eq.float_nodes())]:
        f = tmp_path / f"{name}.onnx"
        onnx.save(m, str(f))
        r = ranges.collect(f, _batches(), "minmax", scheme.op_types)
        q = qdq.quantize(f, tmp_path / f"{name}.q.onnx", r, scheme, exclude=helpers)
        assert sum(n.op_type == "QuantizeLinear" for n in q.graph.node) > 0
        got = _run(q, x)
        snrs[name] = min(snr_db(a.astype(np.float64).ravel(), b.astype(np.float64).ravel()) for a, b in zip(ref, got))
    assert snrs["equalized"] > snrs["plain"] + 4, snrs  # measured: 30.5 → 36.8 dB


def test_a_channel_quiet_in_calibration_is_not_amplified_beyond_the_median_channel():
    xmax = np.array([0.01, 1.0, 1.0, 1.0, 30.0])
    wmax = np.ones(5)
    s = smooth._scales(xmax, wmax, 0.8)
    assert s[0] == s[1]  # floored at the median channel, not divided by 0.01^0.8
    assert s[4] > s[1]


def test_a_matmul_chain_reading_a_graph_input_stays_exact():
    """x (graph input) → MatMul W1 → y → MatMul W2 → z: y is both an outlier output and the next
    MatMul's input; both rewrites apply to it and the float result is unchanged."""
    rng = np.random.default_rng(3)
    w1 = rng.normal(0, 0.2, (C, H)).astype(np.float32)
    w1[:, 2] *= 200
    w2 = rng.normal(0, 0.2, (H, C)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["y"], name="mm1"), helper.make_node("MatMul", ["y", "w2"], ["z"], name="mm2")],
        "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", C])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", C])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    eq = smooth.equalize(m, _batches())
    assert [o.tensor for o in eq.outputs] == ["y"] and {i.tensor for i in eq.inputs} == {"x", "y"}
    onnx.checker.check_model(eq.model, full_check=True)
    x = _batches(1, seed=5)[0]
    np.testing.assert_allclose(_run(eq.model, x)[0], _run(m, x)[0], rtol=1e-4, atol=1e-3)
