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
        nodes += [helper.make_node("QuantizeLinear", ["a", "s", "z"], ["aq"]), helper.make_node("DequantizeLinear", ["aq", "s", "z"], ["a2"])]
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
