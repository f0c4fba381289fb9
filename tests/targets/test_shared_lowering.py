"""The TFLite (StableHLO) and Core ML (MIL) lowerings share one driver (`targets.lowering`) and one
reading of ONNX attributes (`targets.onnx_attrs`): a change made there reaches both backends."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import helper

from compiler import ortsession
from compiler.errors import ToolchainRefused
from targets import onnx_attrs
from targets.coreml.mil_eval import MilRunner
from targets.tflite import TfliteRunner
from tests.targets.coreml import helpers as coreml
from tests.targets.stablehlo import helpers as stablehlo
from tests.targets.stablehlo.helpers import graph_model

F32 = np.float32
rng = np.random.default_rng(0)


def _tflite(proto, feeds, directory):
    directory.mkdir(parents=True, exist_ok=True)
    path, ins, outs = stablehlo.to_tflite(proto, directory)
    with TfliteRunner(path, ins, outs, 1, "reference") as runner:
        return runner.run(feeds)


def _coreml(proto, feeds, directory):
    engine = coreml.build(proto, directory)
    return MilRunner(engine.dir / engine.entry, engine.info["inputs"], engine.info["outputs"]).run(feeds)


BACKENDS = {"tflite": _tflite, "coreml": _coreml}


def _ort(proto, feeds):
    sess = ortsession.session(proto.SerializeToString(), threads=1)
    return dict(zip([o.name for o in proto.graph.output], sess.run(None, feeds)))


def _conv(pads):
    return graph_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=pads)], {"x": (F32, ["batch", 2, 5, 5])}, {"y": F32},
                       {"w": rng.standard_normal((3, 2, 3, 3)).astype(F32)})


def test_a_change_to_a_shared_helper_reaches_both_backends(tmp_path, monkeypatch):
    """Both backends read a Conv's window through `onnx_attrs.window`: swapping its begin and end
    pads there (one change) makes TFLite and Core ML both compute the swapped-pads Conv."""
    written, swapped = _conv([0, 0, 1, 1]), _conv([1, 1, 0, 0])
    swapped.graph.initializer[0].CopyFrom(written.graph.initializer[0])
    feeds = {"x": rng.standard_normal((2, 2, 5, 5)).astype(F32)}
    want, other = _ort(swapped, feeds)["y"], _ort(written, feeds)["y"]
    assert not np.allclose(want, other, atol=1e-3)
    real = onnx_attrs.window

    def window_with_swapped_pads(node, kernel):
        return dataclasses.replace(real(node, kernel), pads=tuple((b, a) for a, b in real(node, kernel).pads))

    monkeypatch.setattr(onnx_attrs, "window", window_with_swapped_pads)
    for name, run in BACKENDS.items():
        np.testing.assert_allclose(run(written, feeds, tmp_path / name)["y"], want, atol=1e-5, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_onnx_semantics_read_once(backend, tmp_path):
    """Attributes only the shared helpers interpret, against ONNX Runtime: auto_pad=SAME_LOWER with
    strides, pool pads, axes from an input (negative), Unsqueeze's negative axes (counted in the
    output's rank), Slice's end clamping on a negative axis, Pad's axes input (opset 18), Split's
    num_outputs into uneven pieces, Gather's negative axis and indices, Flatten's negative axis (a
    dynamic batch: the TFLite lowering read −1 as "after the last dim" before they shared it), a
    Constant's value_floats (which only the TFLite lowering took before)."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], auto_pad="SAME_LOWER", strides=[2, 2]),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceSum", ["p", "last"], ["r"], keepdims=0),
        helper.make_node("Unsqueeze", ["r", "last"], ["u"]),
        helper.make_node("Slice", ["u", "one", "big", "ch"], ["s"]),
        helper.make_node("Pad", ["s", "pads", "", "last"], ["pd"]),
        helper.make_node("Split", ["pd"], ["a", "b", "c3"], axis=-1, num_outputs=3),
        helper.make_node("Gather", ["a", "idx"], ["g"], axis=-1),
        helper.make_node("Flatten", ["g"], ["f"], axis=-1),
        helper.make_node("Constant", [], ["k"], value_floats=[0.5, -1.0]),
        helper.make_node("Add", ["f", "k"], ["fk"]),
    ]
    m = graph_model(nodes, {"x": (F32, ["batch", 2, 7, 7])}, {"fk": F32, "b": F32, "c3": F32},
                    {"w": rng.standard_normal((4, 2, 3, 3)).astype(F32), "last": np.array([-1], np.int64),
                     "one": np.array([1], np.int64), "big": np.array([1000], np.int64), "ch": np.array([-3], np.int64),
                     "pads": np.array([2, 2], np.int64), "idx": np.array([-1, 0], np.int64)})
    onnx.checker.check_model(m, full_check=True)
    assert [d.dim_value for d in m.graph.output[2].type.tensor_type.shape.dim[1:]] == [3, 2, 1]  # 5 = 2 + 2 + 1
    compare = stablehlo.compare_with_ort if backend == "tflite" else coreml.compare_with_ort
    compare(m, [{"x": rng.standard_normal((n, 2, 7, 7)).astype(F32)} for n in (1, 3)], tmp_path, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("backend,label", [("tflite", "TFLite lowering"), ("coreml", "Core ML lowering")])
def test_refusals_are_worded_once(backend, label, tmp_path):
    """A shared helper's refusal is named by the driver with the backend and the node."""
    m = graph_model([helper.make_node("Pad", ["x", "pads"], ["y"], name="p")], {"x": (F32, [2, 3]), "pads": (np.int64, [4])},
                    {"y": F32}, opset=13)
    with pytest.raises(ToolchainRefused, match=rf"^{label}: Pad node 'p': pads computed at run time is not supported\.$"):
        (stablehlo.to_tflite if backend == "tflite" else coreml.build)(m, tmp_path)


def test_refusals_name_what_the_user_wrote_not_what_a_converter_inserted():
    """ONNX Runtime's float16 converter inserts Casts named `graph_input_cast0`…; a refusal names
    them by the tensor they cast. A node without a name is named by the tensor it produces."""
    import onnx_ir as ir
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from targets.lowering import describe

    m = graph_model([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Sigmoid", ["y"], ["z"], name="act")],
                    {"x": (F32, [2, 3])}, {"z": F32})
    half = ir.serde.deserialize_model(convert_float_to_float16(m, keep_io_types=True, disable_shape_infer=True))
    said = {n.op_type + ":" + n.name: describe(n) for n in half.graph}
    casts = [d for k, d in said.items() if k.startswith("Cast:")]
    assert "the Cast of graph input 'x' to float16 (inserted by the fp16 conversion)" in casts, said
    assert any(d.startswith("the Cast of graph output 'z' back to float32") for d in casts), said
    assert said["Sigmoid:act"] == "Sigmoid node 'act'"
    assert said["Relu:"] == "Relu node producing 'y'"
