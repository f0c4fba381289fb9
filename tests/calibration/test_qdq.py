"""`qdq.drop_identity_activations`: removes only the activations a dequantized input cannot reach
past, and leaves the outputs bit-identical (checked in ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from calibration.qdq import drop_identity_activations
from compiler import ortsession


def _model(zp_dtype, zp, scale, act: str, clip_hi: float = 6.0, then_quantize: bool = False):
    q = np.uint8 if zp_dtype == "u8" else np.int8
    inits = [numpy_helper.from_array(np.array(scale, np.float32), "s"), numpy_helper.from_array(np.array(zp, q), "z"),
             numpy_helper.from_array(np.array(0, np.float32), "lo"), numpy_helper.from_array(np.array(clip_hi, np.float32), "hi")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]), helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node(act, ["xd", "lo", "hi"] if act == "Clip" else ["xd"], ["a"], name="act")]
    if then_quantize:
        nodes += [helper.make_node("QuantizeLinear", ["a", "s", "z"], ["aq"]),
                  helper.make_node("DequantizeLinear", ["aq", "s", "z"], ["a2"])]
    nodes.append(helper.make_node("ReduceMean", ["a2" if then_quantize else "a"], ["y"], keepdims=0))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)


def _run(m, x):
    return ortsession.session(m.SerializeToString()).run(None, {"x": x})[0]


def test_relu_after_u8_zero_point_0_and_relu6_after_a_folded_range_are_removed_exactly():
    x = np.linspace(-3, 9, 128, dtype=np.float32).reshape(2, 64)
    for m in (_model("u8", 0, 0.05, "Relu"), _model("u8", 0, 6.0 / 255, "Clip")):
        want = _run(m, x)
        assert drop_identity_activations(m) == ["act"]
        assert [n.op_type for n in m.graph.node] == ["QuantizeLinear", "DequantizeLinear", "ReduceMean"]
        np.testing.assert_array_equal(_run(m, x), want)


def test_activations_that_can_change_a_value_or_that_ort_fuses_stay():
    cases = [_model("u8", 10, 0.05, "Relu"),  # zero point 10: negative values reach the Relu
             _model("i8", 0, 0.05, "Relu"),  # signed
             _model("u8", 0, 0.05, "Clip"),  # 255 * 0.05 = 12.75 > 6
             _model("u8", 0, 0.05, "Relu", then_quantize=True)]  # DQ → Relu → Q: ORT fuses it itself
    for m in cases:
        assert drop_identity_activations(m) == []
        assert "act" in [n.name for n in m.graph.node]


def test_a_float_reader_of_a_float_produced_tensor_reads_it_unquantized():
    """LayerNorm → Q/DQ → MatMul (quantized) and → residual Add (float): the Add reads the LayerNorm
    output again; a Conv-like quantized producer's output keeps its DQ for every reader."""
    from calibration.qdq import float_readers_read_float

    f32 = TensorProto.FLOAT
    inits = [numpy_helper.from_array(np.array(0.02, np.float32), "s"), numpy_helper.from_array(np.array(128, np.uint8), "z"),
             numpy_helper.from_array(np.ones(8, np.float32), "g"), numpy_helper.from_array(np.eye(8, dtype=np.float32), "w")]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "g"], ["ln"], name="ln"),
        helper.make_node("QuantizeLinear", ["ln", "s", "z"], ["ln_q"]), helper.make_node("DequantizeLinear", ["ln_q", "s", "z"], ["ln_dq"]),
        helper.make_node("MatMul", ["ln_dq", "w"], ["mm"], name="mm"),
        helper.make_node("QuantizeLinear", ["mm", "s", "z"], ["mm_q"]), helper.make_node("DequantizeLinear", ["mm_q", "s", "z"], ["mm_dq"]),
        helper.make_node("Add", ["ln_dq", "mm_dq"], ["y"], name="residual"),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", f32, [2, 8])],
                          [helper.make_tensor_value_info("y", f32, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    x = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    before = _run(m, x)
    assert float_readers_read_float(m, {"mm"}) == ["ln"]
    reads = {n.name: list(n.input) for n in m.graph.node if n.name}
    assert reads["residual"] == ["ln", "mm_dq"]  # the LayerNorm output, unrounded; the MatMul output stays int8
    assert reads["mm"] == ["ln_dq", "w"]
    after = _run(m, x)
    ln = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    assert np.abs(after - before).max() > 0  # the residual no longer carries the rounding …
    np.testing.assert_allclose(after - _run_mm_dq(m, x), ln, atol=1e-5)  # … it is the exact LayerNorm output


def _run_mm_dq(m, x):
    probe = onnx.ModelProto()
    probe.CopyFrom(m)
    probe.graph.output[0].name = "mm_dq"
    return _run(probe, x)
