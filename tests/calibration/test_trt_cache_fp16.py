import numpy as np
import onnx
import pytest
from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

from calibration import fp16, trt_cache
from calibration.ranges import Ranges
from compiler.profile import PrecisionPolicy


def _ranges(d):
    data = TensorsData(CalibrationMethod.MinMax,
                       {k: TensorData(lowest=np.float32(lo), highest=np.float32(hi)) for k, (lo, hi) in d.items()})
    return Ranges("minmax", 10, 0.0, data)


def test_trt_cache_format_and_values():
    text = trt_cache.render(_ranges({"input": (-1.0, 127.0), "conv1": (0.0, 2.54)}), "100300")
    lines = text.splitlines()
    assert lines[0] == "TRT-100300-EntropyCalibration2"
    assert "input: 3f800000" in lines  # amax 127 → scale 1.0 → IEEE-754 0x3f800000
    head, scales = trt_cache.parse(text)
    assert scales["conv1"] == pytest.approx(2.54 / 127, rel=1e-6)


def test_fp16_keeps_out_of_range_nodes_in_fp32():
    m = onnx.parser.parse_model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[4] x) => (float[4] y) {
            big = Mul (x, k)
            y = Relu (big)
        }""")
    m.graph.initializer.append(onnx.numpy_helper.from_array(np.full(4, 1e5, np.float32), "k"))
    policy = PrecisionPolicy()
    keep = fp16.keep_fp32_nodes(_name_nodes(m), _ranges({"big": (-3e5, 3e5), "y": (0, 3e5), "x": (-3, 3)}), policy)
    assert set(keep) == {"n0", "n1"} and "3e+05" in keep["n0"]
    converted = fp16.convert(m, policy, list(keep))
    types = {i.name: i.data_type for i in converted.graph.initializer}
    assert types["k"] == onnx.TensorProto.FLOAT  # the kept node's weight stays fp32
    assert converted.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # io kept fp32


def _name_nodes(m):
    for i, n in enumerate(m.graph.node):
        n.name = f"n{i}"
    return m
