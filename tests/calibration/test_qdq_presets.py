"""QDQ insertion follows each preset: types, symmetry, per-channel weights."""

import numpy as np
import onnx
import onnx.numpy_helper as nh
import pytest

from calibration.qdq import quantize, quantized_nodes
from calibration.ranges import collect
from compiler.profile import PRESETS_FILE, _scheme
from compiler.tomlschema import Table, load_toml
from tests.calibration.conftest import digits_batches


def scheme(preset: str):
    return _scheme(Table({"preset": preset}, "test"), "test")


@pytest.mark.parametrize("preset", list(load_toml(PRESETS_FILE, "presets")))
def test_every_preset_documents_its_source(preset):
    s = scheme(preset)
    assert len(s.source) > 40 and s.weight_symmetric


def _zero_points(m: onnx.ModelProto, which: str) -> list[np.ndarray]:
    inits = {i.name: nh.to_array(i) for i in m.graph.initializer}
    out = []
    for n in m.graph.node:
        if n.op_type == "DequantizeLinear" and len(n.input) > 2:
            is_weight = n.input[0] in inits and inits[n.input[0]].ndim >= 2  # not the int32 bias
            is_act = n.input[0] not in inits
            if (which == "weight" and is_weight) or (which == "activation" and is_act):
                out.append(inits[n.input[2]])
    return out


@pytest.mark.parametrize("preset, act_dtype, act_symmetric", [
    ("onnxruntime-cpu", np.uint8, False), ("tensorrt", np.int8, True), ("tflite", np.int8, False),
])
def test_preset_types_and_symmetry(tmp_path, digits_fp32, preset, act_dtype, act_symmetric):
    s = scheme(preset)
    r = collect(digits_fp32, digits_batches(100), "minmax", s.op_types, s.activation_symmetric)
    q = quantize(digits_fp32, tmp_path / "q.onnx", r, s)
    acts, weights = _zero_points(q, "activation"), _zero_points(q, "weight")
    assert acts and weights
    assert all(z.dtype == act_dtype for z in acts)
    if act_symmetric:
        assert all(np.all(z == 0) for z in acts)
    assert all(z.dtype == np.int8 and np.all(z == 0) for z in weights)  # symmetric int8 weights
    inits = {i.name: nh.to_array(i) for i in q.graph.initializer}
    conv_w_scales = [inits[n.input[1]] for n in q.graph.node
                     if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4]
    assert conv_w_scales and all(sc.ndim == 1 and sc.size > 1 for sc in conv_w_scales)  # per output channel
    f = onnx.load(str(digits_fp32))
    assert {f_n.op_type for f_n in f.graph.node if f_n.name in quantized_nodes(q, f, s.op_types)} <= set(s.op_types)
